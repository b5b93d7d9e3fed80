"""Benchmark: a 1 GiB upload through the app to the embedded S3 beside bare boto3, and 50
concurrent uploads racing a quota.

    python bench/uploads.py [--quick]

Creates and finally drops its own database (dealdocs_bench_<random>) on DATABASE_URL's server
(default postgresql://postgres@127.0.0.1:5432), uses REDIS_URL (default redis://127.0.0.1:6379/0),
starts its own SeaweedFS (saas.runtime.embedded.start_s3) and the app as a separate web process:
`python -m saas.cli serve` (waitress, 8 threads, and the worker it starts), pointed at all three.
Progress goes to stderr; the figures are the last line of stdout, one JSON object.

What each figure includes
-------------------------
file_mib                the file: random bytes written to a temporary file first (1024 MiB;
                        --quick 128 MiB), so both uploads read it from the page cache.
app_mib_s               POST /deals/<id>/documents?filename=… (the page's raw-body upload, signed
                        in with a session cookie and the CSRF header), the file streamed by
                        http.client from disk in 1 MiB blocks, timed on the client from the first
                        byte sent to the 201 answer: waitress receiving the body (it spools it to a
                        temporary file before calling the app), the quota reservation, the app
                        streaming it to S3 (boto3 multipart, 8 MiB parts, 4 in flight) with SHA-256
                        and sniffing, the document transaction. Best of the rounds.
bare_mib_s              boto3 upload_fileobj of the same file to the same bucket from this process,
                        boto3's default transfer settings. Best of the rounds (bare and app
                        alternate: 3 rounds, --quick 1).
ratio                   app_mib_s / bare_mib_s (aim: at least 0.8).
app_body_sent_s         when the client had handed the last byte to the socket: about when waitress
                        has the whole body (it calls the app only then; nothing overlaps it).
app_after_body_mib_s    the file's size over the rest of the app upload (app_s − app_body_sent_s):
                        the app's own part — reservation, streaming to S3, the transaction. Best.
rss_growth_mb           the web process's peak RSS (psutil, sampled every 10 ms during the app
                        upload) minus its RSS just before it, after a 1 MiB warm-up upload
                        (aim: under 64 MB; MB = 10^6 bytes). Worst of the rounds.
race_*                  a Free tenant (200 MiB) whose ledger leaves room for exactly 17 files of
                        1 MiB (plus 12345 bytes); 50 threads, each with its own connection, send
                        one 1 MiB file each at once (released together by a barrier) through the
                        same endpoint. race_stored / race_refused count 201 and 413 answers;
                        race_bytes_over_limit = max(0, used + reserved − limit) from the ledger
                        and max(0, ledger's base + bytes of the stored versions − limit), both
                        must be 0; race_requests_per_s = 50 / wall time of the whole volley.
"""
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from saas.runtime.embedded import free_port, start_s3  # noqa: E402

MiB = 1024 * 1024
FREE_LIMIT = 200 * MiB
S3_KEYS = {"access_key": "dealdocs-bench", "secret_key": "dealdocs-bench-secret-" + c.RUN_ID}
BUCKET = "dealdocs-bench"


# --- the file --------------------------------------------------------------------------------

def make_file(path: Path, size: int) -> str:
    """`size` random bytes (incompressible: no store can shrink them); returns their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // (16 * MiB)):
            block = os.urandom(16 * MiB)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


# --- the web process ---------------------------------------------------------------------------

def start_web(port: int, env: dict, logs: Path) -> subprocess.Popen:
    out = open(logs, "ab")
    process = subprocess.Popen([sys.executable, "-m", "saas.cli", "serve", "--host", "127.0.0.1", "--port",
                                str(port), "--instance", env["DEALDOCS_INSTANCE"]], env=env, cwd=c.REPO,
                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web process exited with {process.returncode}; see {logs}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz", headers={"Host": f"localhost:{port}"})
            if connection.getresponse().status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the web process did not answer in 120 s; see {logs}")


def stop_web(process: subprocess.Popen) -> None:
    """SIGTERM: `serve` stops its worker and exits; the whole session goes if it does not."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


class Peak:
    """The peak RSS of a process, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.01):
        self.process, self.every = psutil.Process(pid), every
        self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.every)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak


# --- a signed-in browser, by hand ------------------------------------------------------------

class Session:
    """Cookie + CSRF token of a person signed in on a company's host, for raw http.client calls."""

    def __init__(self, port: int, host: str, email: str):
        self.port, self.host = port, host
        self.cookie = ""
        page = self.call("GET", "/signin")
        self.call("POST", "/signin", body=(
            f"csrf_token={quote(csrf(page))}&email={quote(email)}&password={quote(c.PASSWORD)}").encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"}, expect=302)
        assert self.cookie, "signing in set no session cookie"

    def call(self, method: str, path: str, body=None, headers=None, expect=200) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        connection.request(method, path, body=body, headers={"Host": self.host, "Cookie": self.cookie,
                                                              **(headers or {})})
        response = connection.getresponse()
        payload = response.read().decode()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        connection.close()
        if response.status != expect:
            raise RuntimeError(f"{method} {path} answered {response.status}: {payload[:300]}")
        return payload

    def token(self, path: str) -> str:
        return csrf(self.call("GET", path))

    def upload(self, path: str, token: str, body, size: int) -> tuple[int, dict]:
        """POST a raw body (bytes or a file), streamed in 1 MiB blocks; (status, JSON answer).

        Sets self.sent_at: when the last byte was handed to the socket."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600, blocksize=MiB)
        connection.request("POST", path, body=body, headers={
            "Host": self.host, "Cookie": self.cookie, "X-CSRFToken": token, "Content-Length": str(size),
            "Content-Type": "application/octet-stream", "Accept": "application/json"})
        self.sent_at = time.perf_counter()
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, json.loads(payload or b"{}")


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


# --- setup in-process --------------------------------------------------------------------------

def make_company(app, label: str, plan: str, deals: int = 1) -> tuple[int, str, str, list[int]]:
    """A company through sign_up() with `deals` deals; (tenant id, slug, owner email, deal ids)."""
    from sqlalchemy import select

    from billing.services import apply, offline_state, subscription_of
    from saas.auth.models import Membership
    from saas.auth.services import sign_up
    from saas.crm import services as crm
    from saas.crm.models import Entity
    from tenants.db import db
    from tenants.registry import lookup_tenant
    from tenants.scope import tenant_scope

    slug = f"{label}-{c.RUN_ID}"
    email = f"owner@{slug}.example.com"
    with app.app_context():
        with c.precomputed_password_hash():
            tenant, user = sign_up(company_name=f"Bench {label}", slug=slug, email=email, password=c.PASSWORD)
        apply(subscription_of(tenant.id, lock=True), offline_state(plan, 1))
        db.session.commit()
        with tenant_scope(lookup_tenant(tenant_id=tenant.id)):
            owner = db.session.scalar(select(Membership).where(Membership.tenant_id == tenant.id,
                                                               Membership.user_id == user.id))
            deal_ids = [crm.create(Entity.DEAL, {"title": f"Bench deal {n}"}, owner).id for n in range(deals)]
            db.session.commit()
        assert subscription_of(tenant.id).plan == plan
        return tenant.id, slug, email, deal_ids


def ledger_of(app, tenant_id: int) -> tuple[int, int]:
    from storage import ledger
    from tenants.db import db

    with app.app_context():
        figures = ledger.usage(tenant_id)
        db.session.remove()
        return figures


def stored_bytes(app, tenant_id: int) -> tuple[int, int]:
    """(versions, bytes) stored in a tenant's schema."""
    from tenants.db import db

    with app.app_context(), db.engine.connect() as connection:
        return tuple(connection.execute(text(
            f'SELECT count(*), coalesce(sum(size), 0) FROM "t_{tenant_id}".document_versions')).one())


def version_of(app, tenant_id: int, document_id: int) -> tuple[int, str]:
    from tenants.db import db

    with app.app_context(), db.engine.connect() as connection:
        return tuple(connection.execute(text(
            f'SELECT size, sha256 FROM "t_{tenant_id}".document_versions WHERE document_id = :d'),
            {"d": document_id}).one())


# --- the measurements --------------------------------------------------------------------------

def bare_client(storage_url: str):
    """A plain boto3 client for the same S3 (SigV4, path-style, as the app's)."""
    import boto3
    from botocore.config import Config

    endpoint = storage_url.split("endpoint=", 1)[1].split("&", 1)[0]
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=S3_KEYS["access_key"],
                        aws_secret_access_key=S3_KEYS["secret_key"],
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def bare_upload(s3, path: Path, size: int) -> float:
    key = f"bare/{c.RUN_ID}/{time.monotonic_ns()}"
    with open(path, "rb") as stream:
        started = time.perf_counter()
        s3.upload_fileobj(stream, BUCKET, key)
        elapsed = time.perf_counter() - started
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == size
    s3.delete_object(Bucket=BUCKET, Key=key)
    return elapsed


def app_upload(session: Session, web_pid: int, deal_id: int, token: str, path: Path, size: int, n: int
               ) -> tuple[float, float, int, int]:
    """(seconds, seconds until the body was sent, document id, RSS growth in bytes) of one upload
    of the file through the page."""
    rss = psutil.Process(web_pid).memory_info().rss
    peak = Peak(web_pid)
    with open(path, "rb") as stream:
        started = time.perf_counter()
        status, answer = session.upload(f"/deals/{deal_id}/documents?filename=big-{n}.bin", token, stream, size)
        elapsed = time.perf_counter() - started
    growth = peak.stop() - rss
    if status != 201:
        raise RuntimeError(f"the upload answered {status}: {answer}")
    return elapsed, session.sent_at - started, answer["id"], growth


def race(app, session: Session, tenant_id: int, deal_id: int, token: str) -> dict:
    """50 uploads of 1 MiB at once against room for 17."""
    from storage import ledger
    from tenants.db import db

    remainder = 12345
    base = FREE_LIMIT - 17 * MiB - remainder
    with app.app_context():
        ledger.set_used(tenant_id, base)
        db.session.commit()
    bodies = [n.to_bytes(4, "big") + os.urandom(MiB - 4) for n in range(50)]
    start = threading.Barrier(51)
    statuses = [None] * 50

    def send(n: int):
        start.wait()
        statuses[n] = session.upload(f"/deals/{deal_id}/documents?filename=part-{n}.bin", token, bodies[n], MiB)[0]

    threads = [threading.Thread(target=send, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    used, reserved = ledger_of(app, tenant_id)
    versions, stored = stored_bytes(app, tenant_id)
    return {
        "race_uploads": 50,
        "race_room_for": 17,
        "race_stored": statuses.count(201),
        "race_refused": statuses.count(413),
        "race_other_answers": sorted(s for s in statuses if s not in (201, 413)),
        "race_versions_stored": versions,
        "race_bytes_over_limit": max(0, used + reserved - FREE_LIMIT, base + stored - FREE_LIMIT),
        "race_ledger_exact": (used, reserved) == (base + stored, 0),
        "race_requests_per_s": c.rnd(50 / elapsed, 1),
        "race_wall_s": c.rnd(elapsed, 2),
    }


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    c.sigterm_as_exit()
    quick = args.quick
    size = (128 if quick else 1024) * MiB
    rounds = 1 if quick else 3
    run_started = time.perf_counter()
    load_start = c.loadavg()
    port = free_port()
    figures: dict = {}

    with c.temp_dir() as tmp, c.scratch_database() as database_url:
        tmp = Path(tmp)
        s3_service = start_s3(tmp / "s3", bucket=BUCKET, **S3_KEYS)
        web = None
        app = None
        try:
            c.log(f"mode={'quick' if quick else 'full'} file={size // MiB} MiB rounds={rounds}; S3 {s3_service.url}")
            overrides = dict(SERVER_NAME=f"localhost:{port}", STORAGE_URL=s3_service.url,
                             S3_ACCESS_KEY=S3_KEYS["access_key"], S3_SECRET_KEY=S3_KEYS["secret_key"],
                             TENANT_POOL_SIZE=2)
            app = c.make_bench_app(database_url, tmp, **overrides)
            c.upgrade_public(app)
            # one deal per round: the same file twice on one card would be offered as a new version
            big_id, big_slug, big_email, big_deals = make_company(app, "big", "extended", deals=rounds)
            race_id, race_slug, race_email, [race_deal] = make_company(app, "race", "free")

            path = tmp / "big.bin"
            c.log(f"writing {size // MiB} MiB of random bytes…")
            sha256 = make_file(path, size)

            env = c.cli_env(database_url, tmp)
            env.update(STORAGE_URL=s3_service.url, S3_ACCESS_KEY=S3_KEYS["access_key"],
                       S3_SECRET_KEY=S3_KEYS["secret_key"], SERVER_NAME=f"localhost:{port}", TENANT_POOL_SIZE="2",
                       DEALDOCS_INSTANCE=str(tmp / "instance"), SIGNIN_RATE_LIMIT="1000000 per minute",
                       SIGNIN_ACCOUNT_RATE_LIMIT="1000000 per minute")
            c.log(f"starting the web process (dealdocs serve) on 127.0.0.1:{port}…")
            web = start_web(port, env, tmp / "web.log")
            c.log(f"web process {web.pid} answers")

            s3 = bare_client(s3_service.url)
            session = Session(port, f"{big_slug}.localhost:{port}", big_email)
            token = session.token(f"/deals/{big_deals[0]}")
            warm = os.urandom(MiB)
            status, _answer = session.upload(f"/deals/{big_deals[0]}/documents?filename=warm.bin", token, warm, MiB)
            assert status == 201, status
            with open(tmp / "warm.bin", "wb") as out:
                out.write(os.urandom(64 * MiB))
            bare_upload(s3, tmp / "warm.bin", 64 * MiB)  # warm-up: SeaweedFS grows its volumes

            bare_times, app_times, sent_times, growths = [], [], [], []
            for n in range(rounds):
                c.log(f"round {n + 1}: bare boto3 upload_fileobj…")
                bare_times.append(bare_upload(s3, path, size))
                c.log(f"  {size / MiB / bare_times[-1]:.1f} MiB/s; through the app…")
                elapsed, sent, document_id, growth = app_upload(session, web.pid, big_deals[n], token, path, size, n)
                app_times.append(elapsed)
                sent_times.append(sent)
                growths.append(growth)
                assert version_of(app, big_id, document_id) == (size, sha256), "stored bytes differ"
                c.log(f"  {size / MiB / elapsed:.1f} MiB/s (body received by waitress after {sent:.2f} s of "
                      f"{elapsed:.2f}), RSS growth {growth / MiB:.1f} MiB")

            c.log("racing the quota: 50 uploads of 1 MiB, room for 17…")
            race_session = Session(port, f"{race_slug}.localhost:{port}", race_email)
            raced = race(app, race_session, race_id, race_deal, race_session.token(f"/deals/{race_deal}"))
            c.log(f"  {raced['race_stored']} stored, {raced['race_refused']} refused, "
                  f"{raced['race_bytes_over_limit']} bytes over, {raced['race_requests_per_s']} req/s")

            bare = size / MiB / min(bare_times)
            through_app = size / MiB / min(app_times)
            figures = {
                "mode": "quick" if quick else "full",
                "file_mib": size // MiB,
                "rounds": rounds,
                "app_mib_s": c.rnd(through_app, 1),
                "bare_mib_s": c.rnd(bare, 1),
                "ratio": c.rnd(through_app / bare, 2),
                "app_s": [c.rnd(t, 2) for t in app_times],
                "app_body_sent_s": [c.rnd(t, 2) for t in sent_times],
                "app_after_body_mib_s": c.rnd(max(size / MiB / (t - sent)
                                                  for t, sent in zip(app_times, sent_times)), 1),
                "bare_s": [c.rnd(t, 2) for t in bare_times],
                "rss_growth_mb": c.rnd(max(growths) / 1e6, 1),
                "rss_growth_mb_each": [c.rnd(g / 1e6, 1) for g in growths],
                **raced,
                "cpus": os.cpu_count(),
                "loadavg_start": load_start,
                "loadavg_end": c.loadavg(),
            }
        finally:
            if web is not None:
                stop_web(web)
            s3_service.stop()
            if app is not None:
                c.release_app(app)
    c.finish(figures, run_started)


if __name__ == "__main__":
    main()

"""`dealdocs serve` as a new user runs it: everything embedded, one command, Ctrl-C stops it all."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import psutil
import pytest
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry

from saas.runtime.embedded import free_port

from .conftest import PASSWORD, unique_slug

START_TIMEOUT = 180
QUEUE = "dealdocs"  # serve's default QUEUE_NAME (Serve drops QUEUE_NAME from its environment)


def request(port: int, method: str, path: str, host: str, body: dict | None = None, token: str | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": host, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, json.loads(payload) if payload.startswith(b"{") else payload


class Serve:
    """A running `dealdocs serve`, and every process it started (as far as we can see)."""

    def __init__(self, instance: Path, port: int):
        self.instance, self.port = instance, port
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "SERVER_NAME", "SECRET_KEY", "QUEUE_NAME")}
        # Its own session, like a shell's foreground job: Ctrl-C = SIGINT to the whole group.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "saas.cli", "serve", "--port", str(port), "--instance", str(instance)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.running = threading.Event()
        # Keep reading: a full pipe would block serve and the worker (they share its stdout).
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.tracked: dict[int, psutil.Process] = {}
        if not self.running.wait(START_TIMEOUT):
            self.process.kill()
            pytest.fail("serve did not start:\n" + self.output)
        self.track()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            if "DealDocs is running" in line:
                self.running.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def url(self, service: str) -> str:
        return re.search(rf"embedded {service}: (\S+)", self.output).group(1)

    def ports(self) -> set[int]:
        """TCP ports of the embedded Redis and S3 servers."""
        ports = {int(re.search(r":(\d+)/", self.url("redis")).group(1))}
        return ports | set(json.loads((self.instance / "s3" / "ports.json").read_text()).values())

    def track(self) -> None:
        """Remember every process that belongs to this serve now (call it again when more run)."""
        for p in self.find():
            self.tracked.setdefault(p.pid, p)

    def find(self) -> list[psutil.Process]:
        """serve's process tree; processes working in the instance folder (postgres, weed) or
        listening on the embedded servers' ports (redis-server runs from /tmp); their trees."""
        found = []
        if self.process.returncode is None:  # (once reaped, its pid may be another process's)
            with suppress(psutil.NoSuchProcess):
                serve = psutil.Process(self.process.pid)
                found += [serve, *serve.children(recursive=True)]
        instance = str(self.instance)
        for p in psutil.process_iter(["cmdline", "cwd"]):
            cwd = p.info["cwd"] or ""
            if instance in " ".join(p.info["cmdline"] or []) or cwd == instance or cwd.startswith(instance + os.sep):
                found.append(p)
        ports = self.ports()
        for c in psutil.net_connections("inet"):
            if c.status == psutil.CONN_LISTEN and c.laddr.port in ports and c.pid:
                with suppress(psutil.NoSuchProcess):
                    found.append(psutil.Process(c.pid))
        for p in list(found):
            with suppress(psutil.NoSuchProcess):
                found += p.children(recursive=True)
        return [p for p in found if p.pid != os.getpid()]

    def ctrl_c(self, signum=signal.SIGINT) -> None:
        """What the terminal does on Ctrl-C: SIGINT to the foreground process group (on hang-up: SIGHUP)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, signum=None, timeout: float = 60) -> float:
        """Ctrl-C, or `signum` to serve alone (as `kill` does); seconds until serve exited."""
        self.track()
        started = time.monotonic()
        if signum is None:
            self.ctrl_c()
        else:
            self.process.send_signal(signum)
        self.wait(timeout)
        return time.monotonic() - started

    def wait(self, timeout: float = 60) -> None:
        self.process.wait(timeout)
        self.reader.join(10)  # its last words

    def leftovers(self, grace: float = 1.0) -> list[str]:
        """Processes of this serve still running (zombies have exited), after up to `grace` s."""
        deadline = time.monotonic() + grace
        while True:
            procs = {p.pid: p for p in [*self.tracked.values(), *self.find()]}
            alive = [p for p in procs.values() if _alive(p)]
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return [_describe(p) for p in alive]


def _alive(p: psutil.Process) -> bool:
    """Running, and not a zombie (it has exited; a container's PID 1 may reap lazily)."""
    try:  # (is_running() is False for a pid reused by another process)
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _describe(p: psutil.Process) -> str:
    try:
        return f"{p.pid} {p.name()}: {' '.join(p.cmdline())[:150]}"
    except psutil.NoSuchProcess:
        return f"{p.pid} (gone meanwhile)"


@pytest.fixture
def serve(tmp_path):
    """Start `dealdocs serve` in a fresh instance; serve(...) again starts it on the same one."""
    started = []
    instance, port = tmp_path / "instance", free_port()

    def start() -> Serve:
        started.append(Serve(instance, port))
        return started[-1]

    yield start
    for s in started:  # a failed test must not leave servers behind
        if s.process.poll() is None:
            s.process.send_signal(signal.SIGTERM)
            s.wait(60)


def test_serve_starts_everything_and_stops_everything(serve):
    s = serve()
    port, instance = s.port, s.instance
    site = f"localhost:{port}"
    try:
        assert f"http://{site}/" in s.output
        status, health = request(port, "GET", "/healthz", site)
        assert (status, health) == (200, {"status": "ok"})

        slug = unique_slug("serve")
        status, body = request(port, "POST", "/api/v1/signup", site, {
            "company_name": "Serve Co", "slug": slug, "email": f"boss@{slug}.example.com", "password": PASSWORD})
        assert status == 201, body
        token, tenant_host = body["token"], f"{slug}.{site}"
        assert request(port, "GET", "/api/v1/me", tenant_host, token=token)[0] == 200

        # The worker started by serve delivers the invitation to the instance's outbox.
        status, _ = request(port, "POST", "/api/v1/invitations", tenant_host, {"email": "new@example.com"}, token)
        assert status == 201
        outbox = instance / "outbox"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(outbox.glob("*.eml")):
            time.sleep(0.2)
        assert list(outbox.glob("*.eml")), "the worker did not send the invitation"

        # The leftovers check sees them all, wherever they run from (redis-server: /tmp).
        s.track()
        running = "\n".join(s.leftovers(grace=0))
        for what in ("saas.cli serve", "saas.cli worker", "postgres", "redis-server", "weed"):
            assert what in running, f"{what} not seen in:\n{running}"
    finally:
        took = s.stop()
    print(f"Ctrl-C (idle worker) took {took:.1f} s")
    assert took < 20, f"Ctrl-C took {took:.1f} s"
    assert s.process.returncode == 0, s.output
    assert s.leftovers() == [], s.output

    # Data is kept across restarts; SIGTERM stops it as cleanly as Ctrl-C.
    s = serve()
    try:
        assert request(port, "GET", "/api/v1/me", tenant_host, token=token)[0] == 200
    finally:
        took = s.stop(signal.SIGTERM)
    print(f"SIGTERM took {took:.1f} s")
    assert s.process.returncode == 0, s.output
    assert s.leftovers() == [], s.output


def test_ctrl_c_while_a_job_runs_stops_the_job_too(serve):
    s = serve()
    try:
        q = Queue(QUEUE, connection=Redis.from_url(s.url("redis")))
        job = q.enqueue("time.sleep", 120, job_timeout=300)
        registry = StartedJobRegistry(queue=q)
        deadline = time.monotonic() + 30
        while job.id not in registry.get_job_ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job.id in registry.get_job_ids(), "the worker did not start the job:\n" + s.output
        # The work horse: RQ forks it per job, in its own process group.
        (worker,) = [p for p in psutil.Process(s.process.pid).children() if "worker" in p.cmdline()]
        deadline = time.monotonic() + 10
        while not (horses := [p for p in worker.children() if os.getpgid(p.pid) == p.pid]):
            assert time.monotonic() < deadline, "no work horse"
            time.sleep(0.1)
    finally:
        took = s.stop()
    print(f"Ctrl-C (busy worker) took {took:.1f} s")
    assert took < 20, f"Ctrl-C took {took:.1f} s"
    assert s.process.returncode == 0, s.output
    assert not _alive(horses[0]), "the work horse survived"
    assert "cold shut down" in s.output  # (RQ's log line) the 2nd SIGTERM, not the last resort, did it
    assert s.leftovers() == [], s.output


def test_ctrl_c_pressed_again_while_stopping(serve):
    s = serve()
    s.track()
    started = time.monotonic()
    s.ctrl_c()
    while s.process.poll() is None and time.monotonic() - started < 60:  # twice, and more: impatient
        time.sleep(0.3)
        s.ctrl_c()
    took = time.monotonic() - started
    print(f"Ctrl-C pressed repeatedly: stopped in {took:.1f} s")
    s.wait()
    # The cleanup ran to its end (not cut short: "Aborted!", exit status 1).
    assert s.process.returncode == 0 and "Stopped." in s.output, s.output
    assert s.leftovers() == [], s.output


def test_closing_the_terminal_stops_everything(serve):
    s = serve()
    s.track()
    started = time.monotonic()
    s.ctrl_c(signal.SIGHUP)  # the shell sends its jobs SIGHUP when its terminal goes
    s.wait()
    took = time.monotonic() - started
    print(f"SIGHUP took {took:.1f} s")
    assert took < 20
    assert s.process.returncode == 0, s.output
    assert s.leftovers() == [], s.output


def test_stop_process_last_resort():
    """A worker deaf to SIGTERM, whose child has a process group of its own (as RQ's work horse)."""
    from saas.cli import _stop_process

    code = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    os.setpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as RQ's horse
    time.sleep(120)
print(os.getpid(), flush=True)
time.sleep(120)
"""
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    worker.stdout.readline()
    (child,) = psutil.Process(worker.pid).children()
    started = time.monotonic()
    try:
        _stop_process(worker, warm=0.3, cold=0.3)
    finally:
        took = time.monotonic() - started
        worker.kill()  # if it failed (a no-op once reaped)
        with suppress(psutil.NoSuchProcess):
            child.kill()
    print(f"stopped a worker deaf to SIGTERM in {took:.1f} s")
    assert worker.returncode == -signal.SIGKILL
    assert not _alive(child)
    assert took < 4


def test_a_busy_port_is_explained_and_nothing_is_left(tmp_path):
    import socket

    instance = tmp_path / "instance"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL")}
        result = subprocess.run([sys.executable, "-m", "saas.cli", "serve", "--port", str(port),
                                 "--instance", str(instance)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "Stopped." in result.stdout
    time.sleep(0.5)
    still = [p.pid for p in psutil.process_iter(["cmdline", "cwd"])
             if str(instance) in " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")]
    assert still == []  # redis-server shows the instance only in its working directory

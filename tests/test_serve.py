"""`dealdocs serve` as a new user runs it: everything embedded, one command, Ctrl-C stops it all."""
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from saas.runtime.embedded import free_port

from .conftest import PASSWORD, unique_slug

START_TIMEOUT = 180


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


def start_serve(instance: Path, port: int) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "SERVER_NAME", "SECRET_KEY")}
    process = subprocess.Popen(
        [sys.executable, "-m", "saas.cli", "serve", "--port", str(port), "--instance", str(instance)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if "DealDocs is running" in line:
            return process, lines
    process.kill()
    pytest.fail("serve did not start:\n" + "".join(lines))


def stop_serve(process: subprocess.Popen, sig=signal.SIGINT) -> float:
    started = time.monotonic()
    process.send_signal(sig)
    process.wait(60)
    return time.monotonic() - started


def leftovers(instance: Path) -> list[str]:
    """Processes still running that belong to this instance (servers, worker)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(instance) in cmdline:
            found.append(f"{proc.info['pid']}: {cmdline[:150]}")
    return found


def test_serve_starts_everything_and_stops_everything(tmp_path):
    instance, port = tmp_path / "instance", free_port()
    site = f"localhost:{port}"
    process, lines = start_serve(instance, port)
    try:
        assert f"http://{site}/" in "".join(lines)
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
    finally:
        took = stop_serve(process)
    assert took < 20, f"Ctrl-C took {took:.1f} s"
    assert process.returncode == 0
    time.sleep(0.5)
    assert leftovers(instance) == []

    # Data is kept across restarts; SIGTERM stops it as cleanly as Ctrl-C.
    process, _ = start_serve(instance, port)
    try:
        assert request(port, "GET", "/api/v1/me", tenant_host, token=token)[0] == 200
    finally:
        stop_serve(process, signal.SIGTERM)
    time.sleep(0.5)
    assert leftovers(instance) == []

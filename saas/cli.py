"""The `dealdocs` command: serve, worker, db upgrade, tenants … (a Flask CLI group)."""
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from saas import create_app


def _make_app():
    return create_app()


@click.group(cls=FlaskGroup, create_app=_make_app, add_default_commands=True)
def cli():
    """DealDocs: a CRM whose documents live on the deal card."""


def main():
    cli(prog_name="dealdocs")


# --- db ------------------------------------------------------------------------------------

@cli.group()
def db():
    """Database schema: the public tables and every tenant's schema."""


@db.command("upgrade", with_appcontext=False)
@click.option("--jobs", type=int, default=None, help="Parallel workers for tenant schemas (default 2 × CPUs).")
@click.pass_context
def db_upgrade(ctx, jobs):
    """Upgrade public, then every tenant schema in parallel (one transaction each; rerun to resume)."""
    if _nothing_to_upgrade():
        click.echo("Nothing to upgrade: public and every tenant schema are at head.")
        return
    from saas.maintenance import upgrade_everything

    app = ctx.ensure_object(ScriptInfo).load_app()
    with app.app_context():
        failed = upgrade_everything(jobs or app.config["MIGRATION_JOBS"], echo=click.echo)
    if failed:
        sys.exit(1)


def _nothing_to_upgrade() -> bool:
    """Answer the common no-op case from a bare connection, without loading the whole app."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from saas.config import database_url, tenant_pool_size
    from tenants.provisioning import everything_at_head

    if not database_url():
        return False
    engine = create_engine(database_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return everything_at_head(connection, tenant_pool_size())
    except Exception:  # e.g. a new database without the registry yet: the full path says why
        return False
    finally:
        engine.dispose()


# --- tenants -------------------------------------------------------------------------------

@cli.group()
def tenants():
    """Operators' view of the companies."""


class _ChoiceOf(click.Choice):
    """A click.Choice whose values are read when the command is used, not when this file is imported:
    their modules take most of a second to import, and every `dealdocs` command imports this file."""

    def __init__(self, values):
        self._values = values
        self.case_sensitive = True

    @property
    def choices(self):
        return tuple(self._values())


def _plan_keys():
    from billing.plans import KEYS

    return KEYS


def _operator_statuses():
    from saas.operator.services import STATUSES

    return STATUSES


@tenants.command("list")
@click.option("--plan", type=_ChoiceOf(_plan_keys), help="Only companies on this plan.")
@click.option("--status", type=_ChoiceOf(_operator_statuses),
              help="Only companies in this state (suspended wins over the subscription's state).")
@with_appcontext
def tenants_list(plan, status):
    """Every tenant with its status, plan, seats, storage and MRR (the operator page's table)."""
    from saas.documents.services import human_size
    from saas.operator.services import tenant_table

    table = tenant_table(plan=plan, status=status, per_page=None)
    if not table.rows:
        if plan or status:
            click.echo("No tenants match these filters.")
        else:
            click.echo("No tenants yet. Create one with `dealdocs tenants create` or at the sign-up page.")
        return
    click.echo(f"{'ID':>6}  {'SLUG':<24} {'STATUS':<10} {'PLAN':<9} {'SEATS':>5}  {'STORAGE':<22} {'MRR':>14}  NAME")
    for row in table.rows:
        limit = "unlimited" if row.limit is None else human_size(row.limit)
        mrr = _money(row.mrr_amount, row.currency) if row.mrr else "-"
        click.echo(f"{row.id:>6}  {row.slug:<24} {row.status:<10} {row.plan.key:<9} {row.seats:>5}  "
                   f"{human_size(row.used) + ' / ' + limit:<22} {mrr:>14}  {row.name}")
    totals = ", ".join(_money(amount, currency) for currency, amount in table.total_amounts()) or "0"
    click.echo(f"{len(table.rows)} tenant(s). Total MRR: {totals}")


def _money(amount, currency: str) -> str:
    return f"{amount:,.2f} {currency.upper()}"


@tenants.command("create")
@click.option("--name", required=True, help="Company name.")
@click.option("--slug", required=True, help="Address: <slug>.<SERVER_NAME>.")
@click.option("--owner-email", required=True)
@click.option("--owner-name", default="")
@click.password_option("--owner-password", help="Asked for when not given.")
@with_appcontext
def tenants_create(name, slug, owner_email, owner_name, owner_password):
    """Create a tenant and its owner, as the sign-up page does."""
    from saas.auth.services import sign_up
    from saas.errors import ServiceError
    from saas.tenancy import tenant_url

    try:
        tenant, _user = sign_up(company_name=name, slug=slug, email=owner_email, password=owner_password,
                                owner_name=owner_name)
    except ServiceError as error:
        raise click.ClickException(str(error.message))
    click.echo(f"Created tenant {tenant.id} ({tenant.slug}): {tenant_url(tenant.slug)}")


@tenants.command("suspend")
@click.argument("slug")
@with_appcontext
def tenants_suspend(slug):
    """Stop all access to a tenant (its data is kept)."""
    from saas.maintenance import set_tenant_status

    set_tenant_status(slug, "suspended")
    click.echo(f"Suspended {slug}.")


@tenants.command("activate")
@click.argument("slug")
@with_appcontext
def tenants_activate(slug):
    """Restore access to a suspended tenant."""
    from saas.maintenance import set_tenant_status

    set_tenant_status(slug, "active")
    click.echo(f"Activated {slug}.")


@tenants.command("drop")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def tenants_drop(slug, yes):
    """Delete a tenant for good: its schema, its blobs and its memberships."""
    from saas.maintenance import drop_tenant, find_tenant_or_fail

    tenant = find_tenant_or_fail(slug)
    if not yes:
        click.confirm(f"Delete {tenant.name} ({slug}) with all its data and files? This cannot be undone",
                      abort=True)
    blobs = drop_tenant(tenant)
    click.echo(f"Dropped {slug}: schema {tenant.schema} and {blobs} blob(s) deleted.")


@tenants.command("pool")
@click.option("--size", type=int, default=None)
@with_appcontext
def tenants_pool(size):
    """Top up the pool of ready tenant schemas (sign-up renames one)."""
    from tenants.db import db as sa
    from tenants.provisioning import fill_pool

    built = fill_pool(sa.engine, size if size is not None else current_app.config["TENANT_POOL_SIZE"])
    click.echo(f"Built {built} schema(s).")


@tenants.command("purge-bin")
@with_appcontext
def tenants_purge_bin():
    """Empty what has been in any company's recycle bin for over 30 days (run it daily, e.g. from cron)."""
    from .maintenance import purge_recycle_bins

    click.echo(f"Purged {purge_recycle_bins(echo=click.echo)} record(s).")


# --- operators -----------------------------------------------------------------------------

@cli.group("billing")
def billing_group():
    """Payments through Stripe."""


@billing_group.command("sync")
@with_appcontext
def billing_sync():
    """Re-read every Stripe subscription and apply it, as its webhooks would (run daily, e.g. from cron)."""
    from billing.stripe_provider import enabled
    from saas.account.tasks import resync_all

    if not enabled():
        click.echo("Stripe is not configured (STRIPE_SECRET_KEY): nothing to sync.")
        return
    synced, failed = resync_all(echo=click.echo)
    click.echo(f"{synced} subscription(s) in step with Stripe, {failed} could not be read.")
    if failed:
        raise SystemExit(1)


def _or_fail(service, *args):
    """Run a service; the reason it refuses is the command's error message."""
    from saas.errors import ServiceError

    try:
        return service(*args)
    except ServiceError as error:
        raise click.ClickException(str(error.message))


@cli.group()
def operators():
    """Platform admins: who may open the operator page (/operator on the public site)."""


@operators.command("grant")
@click.argument("email")
@with_appcontext
def operators_grant(email):
    """Let the person with this email open the operator page (they sign in with their password)."""
    from saas.operator.services import grant

    user = _or_fail(grant, email)
    click.echo(f"{user.email} is a platform admin: they sign in at /operator/signin on the public site.")


@operators.command("revoke")
@click.argument("email")
@with_appcontext
def operators_revoke(email):
    """Take the operator page away from this person; their operator sessions end at once."""
    from saas.operator.services import revoke

    had_it = _or_fail(revoke, email)
    click.echo(f"{email.strip().lower()} is no longer a platform admin." if had_it
               else f"{email.strip().lower()} was not a platform admin; nothing changed.")


@operators.command("list")
@with_appcontext
def operators_list():
    """Every platform admin."""
    from saas.operator.services import platform_admins

    admins = platform_admins()
    if not admins:
        click.echo("No platform admins yet. Make one with `dealdocs operators grant EMAIL`.")
        return
    for user in admins:
        click.echo(f"{user.email:<40} {user.name}")


# --- storage -------------------------------------------------------------------------------

@cli.group()
def storage():
    """Blobs and the quota ledger."""


@storage.command("reconcile")
@click.option("--enqueue", is_flag=True, help="Hand it to a worker instead of running it here.")
@with_appcontext
def storage_reconcile(enqueue):
    """Release stale reservations, delete orphaned blobs, set each ledger to the stored bytes (run hourly)."""
    if enqueue:
        from saas.documents.tasks import reconcile_storage
        from saas.jobs import queue

        job = queue().enqueue(reconcile_storage, job_timeout=3600, description="storage reconcile")
        click.echo(f"Queued {job.id}.")
        return
    from saas.documents.maintenance import reconcile_all

    reconcile_all(echo=click.echo)


@cli.group()
def documents():
    """Generated documents."""


@documents.command("sweep")
@with_appcontext
def documents_sweep():
    """Queue again, or fail, documents a dead worker left generating (run every few minutes, e.g. from cron)."""
    from saas.documents.maintenance import sweep_all_generation

    swept = sweep_all_generation(echo=click.echo)
    click.echo(f"{swept['requeued']} document(s) queued again, {swept['failed']} failed.")


# --- worker and serve ----------------------------------------------------------------------

@cli.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
@with_appcontext
def worker(burst):
    """Run one RQ worker for the DealDocs queue."""
    import gc

    from saas.blobs import blob_store
    from saas.documents.maintenance import sweep_all_generation
    from saas.documents.pdf import warm_up
    from saas.jobs import make_worker

    warm_up()  # WeasyPrint and its fonts loaded once here, inherited by every forked job
    blob_store()  # the S3 client too (140 ms to make; no connection is open yet, so it forks safely)
    sweep_all_generation(echo=click.echo)  # what a worker that died left generating
    # What is loaded now is never collected: a forked job neither scans it nor copies its pages.
    gc.collect()
    gc.freeze()
    make_worker(current_app._get_current_object()).work(burst=burst, with_scheduler=True)


@cli.command("serve", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
@click.option("--instance", default="instance", show_default=True, type=click.Path(file_okay=False),
              help="Folder for data, logs and the outbox.")
def serve(host, port, instance):
    """Start the whole product: web, one worker and embedded servers for what is not configured."""
    from saas.runtime.embedded import start_postgres, start_redis, start_s3

    instance = Path(instance).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    started = []
    worker_process = None
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:  # (ignored: under nohup)
        signal.signal(signal.SIGHUP, _raise_keyboard_interrupt)  # its terminal was closed
    try:
        if not os.environ.get("DATABASE_URL"):
            started.append(_announce(start_postgres(instance / "postgres")))
            os.environ["DATABASE_URL"] = started[-1].url
        if not os.environ.get("REDIS_URL"):
            started.append(_announce(start_redis(instance / "redis")))
            os.environ["REDIS_URL"] = started[-1].url
        if not os.environ.get("STORAGE_URL"):
            access, secret = _s3_credentials(instance)
            started.append(_announce(start_s3(instance / "s3", access_key=access, secret_key=secret)))
            os.environ.update(STORAGE_URL=started[-1].url, S3_ACCESS_KEY=access, S3_SECRET_KEY=secret)
        os.environ.setdefault("SERVER_NAME", f"localhost:{port}")
        os.environ["DEALDOCS_INSTANCE"] = str(instance)

        app = create_app(instance_path=str(instance))
        with app.app_context():
            from saas.maintenance import upgrade_everything
            upgrade_everything(app.config["MIGRATION_JOBS"], echo=click.echo)
        # Its own session: the terminal's Ctrl-C reaches only us, and we stop it (see _stop_process).
        worker_process = subprocess.Popen([sys.executable, "-m", "saas.cli", "worker"], env=os.environ.copy(),
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        _serve_http(app, host, port)
    except KeyboardInterrupt:
        pass
    finally:
        # Ctrl-C pressed again (or SIGTERM) must not cut the cleanup short: servers would be left running.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        _say("Stopping…")
        if worker_process is not None:
            _stop_process(worker_process)
        for service in reversed(started):
            service.stop()
        _say("Stopped.")


def _say(message: str) -> None:
    with suppress(OSError):  # e.g. the terminal is gone (SIGHUP): stop all the same
        click.echo(message)


def _serve_http(app, host, port):
    from waitress import create_server

    try:
        # waitress refuses bodies of 1 GiB and more by default; a file may be as large as MAX_FILE_BYTES
        # (plus a multipart envelope). It spools bodies to a temporary file, not to memory.
        max_body = app.config["MAX_FILE_BYTES"] + 16 * 1024 ** 2
        server = create_server(app, host=host, port=port, threads=8, ident="DealDocs", max_request_body_size=max_body,
                               recv_bytes=256 * 1024)  # (8 KB by default: receiving a large upload costs CPU)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port} ({error.strerror}). "
                                   "Is DealDocs already running? Choose another port with --port.")
    click.echo(click.style(f"\n  DealDocs is running: open http://{app.config['SERVER_NAME']}/\n", bold=True)
               + "  Press Ctrl-C to stop.\n")
    try:
        server.run()
    finally:
        server.close()


def _announce(service):
    click.echo(f"  embedded {service.name}: {service.url}")
    return service


def _s3_credentials(instance: Path) -> tuple[str, str]:
    """The embedded S3 server's keys, made once and kept with its data."""
    path = instance / "s3_credentials"
    if not path.exists():
        path.write_text(f"{secrets.token_hex(10)}\n{secrets.token_urlsafe(30)}\n")
        path.chmod(0o600)
    access, secret = path.read_text().split()
    return access, secret


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_process(process: subprocess.Popen, warm: float = 4, cold: float = 5) -> None:
    """Stop the worker, started in a session of its own, and everything it started.

    At most warm + cold s when the worker obeys RQ's rules below; the last resort adds ≤ 8 s.

    RQ 3's worker takes a first SIGTERM as a warm shutdown (finish the current job, then exit) and
    a second one, 1 s or more later (sooner is ignored), as a cold one: SIGKILL the work horse's
    process group, then exit. Last resort: SIGKILL the worker's process group (it and its
    scheduler). The horse has a process group of its own (RQ calls setpgrp) but stays in the
    worker's session, as does anything a job started: whatever is left of the session goes too.
    The worker is reaped only at the end, so its pid (= the group's and the session's id) cannot
    be reused by another process meanwhile.
    """
    from saas.runtime.embedded import terminate_processes

    for signum, timeout in ((signal.SIGTERM, warm), (signal.SIGTERM, cold), (signal.SIGKILL, 2)):
        if _exited(process):
            break
        with suppress(ProcessLookupError):
            if signum == signal.SIGKILL:
                os.killpg(process.pid, signum)
            else:
                os.kill(process.pid, signum)  # (not process.send_signal: it reaps)
        if _exited(process, timeout):
            break
    terminate_processes(_session(process.pid), timeout=2)
    with suppress(subprocess.TimeoutExpired):
        process.wait(2)


def _exited(process: subprocess.Popen, timeout: float = 0) -> bool:
    """Whether `process` has exited (waiting up to `timeout` s), without reaping it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:  # reaped already
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _session(sid: int) -> list:
    """The processes of session `sid` but its leader."""
    import psutil

    found = []
    for pid in psutil.pids():
        with suppress(OSError, psutil.Error):
            if pid != sid and os.getsid(pid) == sid:
                found.append(psutil.Process(pid))
    return found


if __name__ == "__main__":
    main()

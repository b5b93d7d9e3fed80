"""Fixtures and helpers for the Stripe billing tests: the fake Stripe, an app that uses it (with its
own queue, so the session app's worker never takes its jobs), a worker for that queue, and
delivering signed events to the webhook the way Stripe does.

Tests import the fixtures from here: `from .billing_helpers import stripe_fake, stripe_app, …`.
"""
import json
import uuid
from datetime import datetime, timezone

import pytest
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from tenants.db import db

from .conftest import RUN_ID, client_for
from .stripe_fake import DEFAULT_PRICES, StripeFake, sign

PRICE_STANDARD = "price_standard_" + RUN_ID
PRICE_EXTENDED = "price_extended_" + RUN_ID
SECRET_KEY = "sk_test_" + RUN_ID
WEBHOOK_SECRET = "whsec_test_" + RUN_ID
WEBHOOK = "/billing/stripe/webhook"


@pytest.fixture
def stripe_fake():
    """A fresh fake Stripe for the test, priced like the app's configured plans ($9 and $15 a seat)."""
    fake = StripeFake(prices={PRICE_STANDARD: DEFAULT_PRICES["price_standard"],
                              PRICE_EXTENDED: DEFAULT_PRICES["price_extended"]}).start()
    yield fake
    fake.stop()


def stripe_config(fake: StripeFake, **overrides) -> dict:
    return {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake.url,
        "STRIPE_PRICE_STANDARD": PRICE_STANDARD,
        "STRIPE_PRICE_EXTENDED": PRICE_EXTENDED,
        "PLAN_STANDARD_PRICE": "9.00",
        "PLAN_EXTENDED_PRICE": "15.00",
        "BILLING_CURRENCY": "usd",
        "TRIAL_DAYS": 0,
        "GRACE_DAYS": 7,
        "QUEUE_NAME": f"dealdocs-test-{RUN_ID}-stripe-{uuid.uuid4().hex[:8]}",
        **overrides,
    }


@pytest.fixture
def make_stripe_app(app, make_app, stripe_fake):
    """make_stripe_app(**config) → an app billing through the fake, each with its own queue (on the
    session app's database, which `app` brings to the latest migrations)."""
    made = []

    def factory(**overrides):
        made.append(make_app(**stripe_config(stripe_fake, **overrides)))
        return made[-1]
    yield factory
    for each in made:
        with each.app_context():
            _queue(each).empty()
            db.engine.dispose()


@pytest.fixture
def stripe_app(make_stripe_app):
    return make_stripe_app()


def _queue(app) -> Queue:
    from saas.jobs import TenantJob

    return Queue(app.config["QUEUE_NAME"], connection=Redis.from_url(app.config["REDIS_URL"]), job_class=TenantJob)


def run_jobs_of(app):
    """Run every job queued for `app` in-process (a real RQ worker, burst mode)."""
    from saas.jobs import TenantSimpleWorker, make_worker

    worker = make_worker(app, TenantSimpleWorker)
    worker.work(burst=True)
    return worker


@pytest.fixture
def run_stripe_jobs(stripe_app):
    """run_stripe_jobs() → runs the stripe app's queued jobs (webhook events, seat syncs, mail)."""
    return lambda: run_jobs_of(stripe_app)


def queued_jobs(app) -> list[str]:
    """What waits in `app`'s queue: each job's function name."""
    return [job.func_name.rsplit(".", 1)[-1] for job in _queue(app).get_jobs()]


def retry_failed_jobs_now(app) -> int:
    """Put the jobs RQ scheduled for a later retry back on the queue now (no waiting in tests)."""
    queue = _queue(app)
    registry = ScheduledJobRegistry(queue=queue)
    ids = registry.get_job_ids()
    for job in queue.job_class.fetch_many(ids, connection=queue.connection):
        registry.remove(job)
        queue.enqueue_job(job)
    return len(ids)


def scheduled_retries(app) -> int:
    return len(ScheduledJobRegistry(queue=_queue(app)).get_job_ids())


def payload_of(event: dict) -> bytes:
    return json.dumps(event).encode()


def deliver(client, event: dict | bytes, secret: str | None = None, timestamp: int | None = None,
            signature: str | None = None):
    """POST `event` to the webhook as Stripe does: JSON body, `Stripe-Signature` made with `secret`
    (the app's by default) at `timestamp` (now by default); `signature` replaces the header."""
    payload = event if isinstance(event, bytes) else payload_of(event)
    secret = secret or client.application.config["STRIPE_WEBHOOK_SECRET"]
    headers = {"Stripe-Signature": signature if signature is not None else sign(payload, secret, timestamp)}
    return client.post(WEBHOOK, data=payload, headers=headers, content_type="application/json")


def deliver_all(client, events: list[dict]) -> list[dict]:
    answers = []
    for event in events:
        response = deliver(client, event)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        answers.append(response.get_json())
    return answers


def webhook_client(app):
    """Stripe's side of the webhook: the app's main host (the endpoint answers on any host)."""
    return client_for(app, app.config["SERVER_NAME"])


def utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)

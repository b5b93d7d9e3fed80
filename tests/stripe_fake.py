"""A local, stateful fake of the parts of the Stripe API DealDocs calls, plus the pages a person
sees on Stripe (Checkout, the Customer Portal) and the webhooks Stripe would send.

Tests point stripe-python at it (`STRIPE_API_BASE=fake.url`), so no call leaves the machine.
It answers like Stripe: form-encoded requests with bracketed keys, JSON objects with `object`
fields and Stripe's id prefixes, errors as {"error": {...}} with an HTTP status.

State changes a person or Stripe's billing would cause (paying at Checkout, a failed renewal, a
cancellation) are test-side helpers: each changes the fake's state the way Stripe would and
returns the events Stripe would send, in Stripe's order. The test delivers them (in any order it
likes); the Checkout and Portal pages deliver theirs to the configured webhook themselves.

By hand:
    python -m tests.stripe_fake --port 12111 --webhook http://localhost:5000/billing/stripe/webhook \
        --secret whsec_dev --price-standard price_standard --price-extended price_extended
"""
import argparse
import base64
import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-10-28.endive"
MONTH = 30 * 24 * 3600
DAY = 24 * 3600


class StripeError(Exception):
    """Answered as Stripe's error body with `status`."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", **extra):
        super().__init__(message)
        self.status, self.kind, self.extra = status, kind, extra

    def body(self) -> dict:
        return {"error": {"type": self.kind, "message": str(self), **self.extra}}


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


# --- form bodies: a[b][0][c]=v → {"a": {"b": [{"c": "v"}]}} ----------------------------------

def parse_form(body: str) -> dict:
    tree: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(tree)


def _lists(node):
    """Dicts keyed 0, 1, 2… are Stripe's arrays."""
    if not isinstance(node, dict):
        return node
    node = {key: _lists(value) for key, value in node.items()}
    if node and all(key.isdigit() for key in node):
        return [node[key] for key in sorted(node, key=int)]
    return node


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends with `payload`."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


DEFAULT_PRICES = {
    "price_standard": {"unit_amount": 900, "lookup_key": "dealdocs_standard", "nickname": "Standard"},
    "price_extended": {"unit_amount": 1500, "lookup_key": "dealdocs_extended", "nickname": "Extended"},
}


class StripeFake:
    """The fake Stripe: `start()`, use `url`, `stop()`. Thread-safe; state lives in plain dicts."""

    def __init__(self, prices: dict | None = None, currency: str = "usd", webhook_url: str | None = None,
                 webhook_secret: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.lock = threading.RLock()
        self.currency = currency
        self.prices = {price_id: self._price(price_id, **spec) for price_id, spec in (prices or DEFAULT_PRICES).items()}
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.requests: list[dict] = []  # every API request: method, path, params, headers (lower-case names)
        self.events: list[dict] = []  # every event made, in order
        self.deliveries: list[dict] = []  # webhook posts the pages made: event id, type, status
        self.sessions: dict[str, dict] = {}  # checkout sessions
        self.portal_sessions: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self._failures: list[dict] = []
        self._idempotent: dict[str, tuple[int, dict]] = {}
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- running -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "StripeFake":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- failures ----------------------------------------------------------------------------

    def fail_next(self, path_prefix: str, status: int = 500, times: int = 1) -> None:
        """The next `times` API calls whose path starts with `path_prefix` fail with `status`.

        stripe-python retries 5xx answers (our client twice), so "Stripe is down" for one call of
        our code is times=3; `recover()` ends any failures still pending."""
        with self.lock:
            self._failures.append({"prefix": path_prefix, "status": status, "left": times})

    def recover(self) -> None:
        with self.lock:
            self._failures.clear()

    def _failure_for(self, path: str) -> StripeError | None:
        with self.lock:
            for failure in self._failures:
                if path.startswith(failure["prefix"]) and failure["left"] > 0:
                    failure["left"] -= 1
                    return StripeError(failure["status"], "The fake Stripe is down (fail_next).", "api_error")
        return None

    # --- the request log ---------------------------------------------------------------------

    def calls(self, method: str | None = None, path_prefix: str = "") -> list[dict]:
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)]

    def subscription_updates(self, sub_id: str) -> list[dict]:
        """The params of every POST /v1/subscriptions/{sub_id} that reached the fake."""
        return [r["params"] for r in self.calls("POST", f"/v1/subscriptions/{sub_id}")]

    # --- objects -----------------------------------------------------------------------------

    def _price(self, price_id: str, unit_amount: int, lookup_key: str | None = None, nickname: str | None = None,
               interval: str = "month", currency: str | None = None) -> dict:
        return {"id": price_id, "object": "price", "active": True, "currency": currency or self.currency,
                "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount), "lookup_key": lookup_key,
                "nickname": nickname, "product": "prod_" + price_id, "type": "recurring", "livemode": False,
                "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"}}

    def price(self, price_id: str) -> dict:
        if price_id not in self.prices:
            raise StripeError(400, f"No such price: '{price_id}'", code="resource_missing", param="price")
        return copy.deepcopy(self.prices[price_id])

    def subscription(self, sub_id: str) -> dict:
        with self.lock:
            if sub_id not in self.subscriptions:
                raise StripeError(404, f"No such subscription: '{sub_id}'", code="resource_missing", param="id")
            return copy.deepcopy(self.subscriptions[sub_id])

    def event(self, type_: str, obj: dict, previous_attributes: dict | None = None) -> dict:
        """A Stripe event envelope around a snapshot of `obj`, recorded in `events`."""
        data = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        made = {"id": new_id("evt"), "object": "event", "api_version": API_VERSION, "created": int(time.time()),
                "data": data, "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": type_}
        with self.lock:
            self.events.append(made)
        return made

    # --- the API -----------------------------------------------------------------------------

    def create_checkout_session(self, params: dict) -> dict:
        if params.get("mode") != "subscription":
            raise StripeError(400, "This fake only does mode=subscription.", param="mode")
        items = params.get("line_items") or []
        if not items:
            raise StripeError(400, "Missing required param: line_items.", param="line_items")
        for item in items:
            self.price(item.get("price", ""))
        for required in ("success_url",):
            if not params.get(required):
                raise StripeError(400, f"Missing required param: {required}.", param=required)
        session_id = new_id("cs")
        session = {
            "id": session_id, "object": "checkout.session", "mode": "subscription", "status": "open",
            "payment_status": "unpaid", "client_reference_id": params.get("client_reference_id"),
            "customer": params.get("customer"), "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata") or {}, "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"), "subscription": None, "livemode": False,
            "created": int(time.time()), "expires_at": int(time.time()) + DAY, "currency": self.currency,
            "url": f"{self.url}/checkout/{session_id}",
        }
        with self.lock:
            if session["customer"] and session["customer"] not in self.customers:
                raise StripeError(400, f"No such customer: '{session['customer']}'", code="resource_missing",
                                  param="customer")
            # Kept beside the session, as Stripe does (line items and subscription_data are not echoed).
            self.sessions[session_id] = {"session": session, "line_items": copy.deepcopy(items),
                                         "subscription_data": copy.deepcopy(params.get("subscription_data") or {})}
        return copy.deepcopy(session)

    def create_portal_session(self, params: dict) -> dict:
        customer = params.get("customer")
        with self.lock:
            if not customer or customer not in self.customers:
                raise StripeError(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
            flow = params.get("flow_data")
            if flow and flow.get("type") not in ("subscription_update_confirm", "subscription_cancel"):
                raise StripeError(400, f"This fake does not do flow {flow.get('type')!r}.", param="flow_data[type]")
            session_id = new_id("bps")
            session = {"id": session_id, "object": "billing_portal.session", "customer": customer,
                       "return_url": params.get("return_url"), "flow": flow, "livemode": False,
                       "created": int(time.time()), "url": f"{self.url}/portal/{session_id}"}
            self.portal_sessions[session_id] = session
            return copy.deepcopy(session)

    def update_subscription(self, sub_id: str, params: dict) -> dict:
        with self.lock:
            sub = self._live(sub_id)
            previous = {}
            for change in params.get("items") or []:
                item = self._item(sub, change.get("id"))
                if "price" in change:
                    previous.setdefault("items", copy.deepcopy(sub["items"]))
                    item["price"] = self.price(change["price"])
                if "quantity" in change:
                    previous.setdefault("items", copy.deepcopy(sub["items"]))
                    item["quantity"] = _positive(change["quantity"], "items[0][quantity]")
            if "cancel_at_period_end" in params:
                previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
                self._set_cancel(sub, params["cancel_at_period_end"] == "true")
            if params.get("metadata"):
                sub["metadata"].update(params["metadata"])
            if previous:
                self._deliver_later([self.event("customer.subscription.updated", sub, previous)])
            return copy.deepcopy(sub)

    def _live(self, sub_id: str) -> dict:
        if sub_id not in self.subscriptions:
            raise StripeError(404, f"No such subscription: '{sub_id}'", code="resource_missing", param="id")
        sub = self.subscriptions[sub_id]
        if sub["status"] == "canceled":
            raise StripeError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        return sub

    @staticmethod
    def _item(sub: dict, item_id: str | None) -> dict:
        for item in sub["items"]["data"]:
            if item["id"] == item_id:
                return item
        raise StripeError(400, f"No such subscription item: '{item_id}'", code="resource_missing",
                          param="items[0][id]")

    @staticmethod
    def _set_cancel(sub: dict, cancel: bool) -> None:
        sub["cancel_at_period_end"] = cancel
        sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] if cancel else None
        sub["canceled_at"] = int(time.time()) if cancel else None

    # --- what Stripe does: each returns the events it would send ------------------------------

    def complete_checkout(self, session_id: str, status: str | None = None) -> list[dict]:
        """The person pays at Checkout: a customer and a subscription appear, the first invoice is paid.

        `status` defaults to "trialing" when the session asked for a trial, else "active"."""
        with self.lock:
            kept = self.sessions[session_id]
            session = kept["session"]
            if session["status"] != "open":
                raise StripeError(400, f"Checkout session {session_id} is {session['status']}.")
            now = int(time.time())
            customer = session["customer"] or self._new_customer(session["customer_email"])["id"]
            data = kept["subscription_data"]
            trial_days = int(data.get("trial_period_days") or 0)
            status = status or ("trialing" if trial_days else "active")
            sub_id = new_id("sub")
            period_end = now + (trial_days * DAY if status == "trialing" else MONTH)
            items = [{"id": new_id("si"), "object": "subscription_item", "subscription": sub_id,
                      "price": self.price(line["price"]), "quantity": _positive(line.get("quantity", 1), "quantity"),
                      "current_period_start": now, "current_period_end": period_end, "metadata": {},
                      "created": now} for line in kept["line_items"]]
            sub = {
                "id": sub_id, "object": "subscription", "customer": customer, "status": status,
                "items": {"object": "list", "data": items, "has_more": False, "total_count": len(items),
                          "url": f"/v1/subscription_items?subscription={sub_id}"},
                "metadata": dict(data.get("metadata") or {}), "cancel_at_period_end": False, "cancel_at": None,
                "canceled_at": None, "ended_at": None, "created": now, "start_date": now,
                "trial_start": now if status == "trialing" else None,
                "trial_end": now + trial_days * DAY if status == "trialing" else None,
                "currency": self.currency, "collection_method": "charge_automatically", "livemode": False,
                "latest_invoice": None,
            }
            self.subscriptions[sub_id] = sub
            invoice = self._invoice(sub, paid=True, amount=0 if status == "trialing" else None)
            session.update(status="complete", payment_status="paid" if status == "active" else "no_payment_required",
                           customer=customer, subscription=sub_id, url=None)
            return [self.event("checkout.session.completed", session),
                    self.event("customer.subscription.created", sub),
                    self.event("invoice.paid", invoice)]

    def fail_payment(self, sub_id: str) -> list[dict]:
        """A renewal's charge is declined: the subscription goes past due."""
        with self.lock:
            sub = self._live(sub_id)
            invoice = self._invoice(sub, paid=False)
            previous = {"status": sub["status"]}
            sub["status"] = "past_due"
            return [self.event("invoice.payment_failed", invoice),
                    self.event("customer.subscription.updated", sub, previous)]

    def pay(self, sub_id: str) -> list[dict]:
        """The open invoice is paid (new card, retry): the subscription is active again."""
        with self.lock:
            sub = self._live(sub_id)
            invoice = self.invoices.get(sub["latest_invoice"])
            if invoice is None or invoice["status"] == "paid":
                invoice = self._invoice(sub, paid=True)
            else:
                invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, attempted=True,
                               status_transitions={"paid_at": int(time.time())})
            previous = {"status": sub["status"]}
            sub["status"] = "active"
            return [self.event("invoice.paid", invoice), self.event("customer.subscription.updated", sub, previous)]

    def cancel_at_period_end(self, sub_id: str) -> list[dict]:
        with self.lock:
            sub = self._live(sub_id)
            previous = {"cancel_at_period_end": sub["cancel_at_period_end"], "cancel_at": sub["cancel_at"]}
            self._set_cancel(sub, True)
            return [self.event("customer.subscription.updated", sub, previous)]

    def end(self, sub_id: str) -> list[dict]:
        """The subscription ends (its period ran out after a cancellation, or it was cancelled now)."""
        with self.lock:
            sub = self._live(sub_id)
            now = int(time.time())
            sub.update(status="canceled", ended_at=now, canceled_at=sub["canceled_at"] or now)
            return [self.event("customer.subscription.deleted", sub)]

    def switch_price(self, sub_id: str, price: str, quantity: int | None = None) -> list[dict]:
        """The subscription's plan line moves to `price` (as the Portal's switch does)."""
        with self.lock:
            sub = self._live(sub_id)
            item = sub["items"]["data"][0]
            previous = {"items": copy.deepcopy(sub["items"])}
            item["price"] = self.price(price)
            if quantity is not None:
                item["quantity"] = _positive(quantity, "quantity")
            return [self.event("customer.subscription.updated", sub, previous)]

    def _new_customer(self, email: str | None) -> dict:
        customer = {"id": new_id("cus"), "object": "customer", "email": email, "created": int(time.time()),
                    "livemode": False, "metadata": {}}
        self.customers[customer["id"]] = customer
        return customer

    def _invoice(self, sub: dict, paid: bool, amount: int | None = None) -> dict:
        item = sub["items"]["data"][0]
        due = item["price"]["unit_amount"] * item["quantity"] if amount is None else amount
        now = int(time.time())
        invoice = {
            "id": new_id("in"), "object": "invoice", "customer": sub["customer"], "currency": self.currency,
            "status": "paid" if paid else "open", "amount_due": due, "amount_paid": due if paid else 0,
            "amount_remaining": 0 if paid else due, "attempted": True, "attempt_count": 1,
            "billing_reason": "subscription_create" if sub["latest_invoice"] is None else "subscription_cycle",
            "parent": {"type": "subscription_details", "quote_details": None,
                       "subscription_details": {"subscription": sub["id"], "metadata": dict(sub["metadata"])}},
            "period_start": item["current_period_start"], "period_end": item["current_period_end"],
            "created": now, "livemode": False, "status_transitions": {"paid_at": now if paid else None},
        }
        self.invoices[invoice["id"]] = invoice
        sub["latest_invoice"] = invoice["id"]
        return copy.deepcopy(invoice)

    # --- webhooks ----------------------------------------------------------------------------

    def deliver(self, events: list[dict]) -> list[int]:
        """POST `events`, signed with the webhook secret, to the webhook URL; the HTTP statuses."""
        statuses = []
        for made in events:
            payload = json.dumps(made).encode()
            request = urllib.request.Request(self.webhook_url, data=payload, method="POST", headers={
                "Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0 (+https://stripe.com)",
                "Stripe-Signature": sign(payload, self.webhook_secret)})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            with self.lock:
                self.deliveries.append({"event": made["id"], "type": made["type"], "status": status})
            statuses.append(status)
        return statuses

    # --- the pages a person sees ---------------------------------------------------------------

    def checkout_page(self, session_id: str) -> str:
        with self.lock:
            kept = self.sessions.get(session_id)
            if kept is None:
                raise StripeError(404, "This Checkout page does not exist.")
            session, line = kept["session"], kept["line_items"][0]
            price = self.price(line["price"])
            quantity = int(line.get("quantity", 1))
            trial = int(kept["subscription_data"].get("trial_period_days") or 0)
        amount = _money(price["unit_amount"] * quantity, price["currency"])
        email = session["customer_email"] or self.customers.get(session["customer"] or "", {}).get("email", "")
        lines = [f"<h1>Subscribe to {_e(_plan_name(price))}</h1>",
                 f"<p>Seats: <span id='seats'>{quantity}</span></p>",
                 f"<p>Amount: <span id='amount'>{_e(amount)}</span> per month</p>",
                 f"<p>Email: {_e(email)}</p>"]
        if trial:
            lines.append(f"<p>{trial} days free, then {_e(amount)} per month</p>")
        if session["status"] != "open":
            lines.append("<p>This Checkout session is complete.</p>")
        else:
            lines.append(f"<form method='post' action='/checkout/{_e(session_id)}/pay'>"
                         "<button type='submit'>Pay</button></form>")
        if session.get("cancel_url"):
            lines.append(f"<p><a href='{_e(session['cancel_url'])}'>Back</a></p>")
        return _page("Checkout", lines)

    def pay_checkout(self, session_id: str) -> str:
        """The Pay button: complete, deliver the events, and where the person goes next."""
        with self.lock:
            if session_id not in self.sessions:
                raise StripeError(404, "This Checkout page does not exist.")
            session = self.sessions[session_id]["session"]
            events = self.complete_checkout(session_id) if session["status"] == "open" else []
        self._deliver_if_configured(events)
        return session["success_url"]

    def portal_page(self, session_id: str) -> str:
        portal = self._portal(session_id)
        flow = portal["flow"] or {}
        sub = self._current_subscription(portal["customer"])
        action = f"/portal/{_e(session_id)}/"
        lines = ["<h1>Billing portal</h1>"]
        if sub is not None:
            item = sub["items"]["data"][0]
            lines.append(f"<p>Current plan: <span id='plan'>{_e(_plan_name(item['price']))}</span>, "
                         f"{item['quantity']} seats, status {_e(sub['status'])}"
                         f"{', cancels at the period end' if sub['cancel_at_period_end'] else ''}</p>")
        if flow.get("type") == "subscription_update_confirm":
            change = flow["subscription_update_confirm"]["items"][0]
            price = self.price(change["price"])
            quantity = int(change.get("quantity") or 1)
            lines.append(f"<p>Switch to {_e(_plan_name(price))}: {quantity} seats, "
                         f"{_e(_money(price['unit_amount'] * quantity, price['currency']))} per month</p>")
            lines.append(f"<form method='post' action='{action}confirm'><button type='submit'>Confirm</button></form>")
        elif flow.get("type") == "subscription_cancel" or (sub is not None and not sub["cancel_at_period_end"]):
            lines.append(f"<form method='post' action='{action}cancel'><button type='submit'>Cancel plan</button></form>")
        if portal.get("return_url"):
            lines.append(f"<p><a href='{_e(portal['return_url'])}'>Return to DealDocs</a></p>")
        return _page("Billing portal", lines)

    def portal_action(self, session_id: str, action: str) -> str:
        """Confirm the switch or cancel the plan: apply, deliver the events, where to go next."""
        portal = self._portal(session_id)
        flow = portal["flow"] or {}
        with self.lock:
            if action == "confirm" and flow.get("type") == "subscription_update_confirm":
                confirm = flow["subscription_update_confirm"]
                change = confirm["items"][0]
                sub = self._live(confirm["subscription"])
                if self._item(sub, change.get("id")) is not sub["items"]["data"][0]:
                    raise StripeError(400, "This fake switches the first item only.")
                events = self.switch_price(sub["id"], change["price"], int(change.get("quantity") or 1))
            elif action == "cancel":
                target = ((flow.get("subscription_cancel") or {}).get("subscription")
                          or (self._current_subscription(portal["customer"]) or {}).get("id"))
                if not target:
                    raise StripeError(400, "There is no subscription to cancel.")
                events = self.cancel_at_period_end(target)
            else:
                raise StripeError(400, f"Nothing to {action} in this portal session.")
        self._deliver_if_configured(events)
        after = (flow.get("after_completion") or {}).get("redirect") or {}
        return after.get("return_url") or portal["return_url"]

    def _portal(self, session_id: str) -> dict:
        with self.lock:
            if session_id not in self.portal_sessions:
                raise StripeError(404, "This portal session does not exist.")
            return copy.deepcopy(self.portal_sessions[session_id])

    def _current_subscription(self, customer: str) -> dict | None:
        with self.lock:
            live = [sub for sub in self.subscriptions.values()
                    if sub["customer"] == customer and sub["status"] != "canceled"]
            return copy.deepcopy(live[-1]) if live else None

    def _deliver_if_configured(self, events: list[dict]) -> None:
        if self.webhook_url and self.webhook_secret:
            self.deliver(events)

    def _deliver_later(self, events: list[dict]) -> None:
        """Events of an API call go out after it has answered, as Stripe's do."""
        if self.webhook_url and self.webhook_secret:
            threading.Thread(target=self.deliver, args=(events,), daemon=True).start()

    # --- routing -----------------------------------------------------------------------------

    def answer_api(self, method: str, path: str, params: dict) -> dict:
        if method == "POST" and path == "/v1/checkout/sessions":
            return self.create_checkout_session(params)
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return self.create_portal_session(params)
        match = re.fullmatch(r"/v1/subscriptions/([\w-]+)", path)
        if match and method == "GET":
            return self.subscription(match.group(1))
        if match and method == "POST":
            return self.update_subscription(match.group(1), params)
        if match and method == "DELETE":  # cancel now
            events = self.end(match.group(1))
            self._deliver_later(events)
            return self.subscription(match.group(1))
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")


def _positive(value, param: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", param=param) from None
    if number < 1:
        raise StripeError(400, "Quantity must be at least 1.", param=param)
    return number


def _api_key(authorization: str) -> str:
    """The secret key of a request: a bearer token, or basic auth's user (as `curl -u sk_…:` sends)."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def _plan_name(price: dict) -> str:
    return price.get("nickname") or (price.get("lookup_key") or price["id"]).removeprefix("dealdocs_").title()


def _money(minor: int, currency: str) -> str:
    return f"{Decimal(minor) / 100:.2f} {currency.upper()}"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, lines: list[str]) -> str:
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)} · Stripe (fake)</title></head><body>" + "\n".join(lines) + "</body></html>")


def _handler(fake: StripeFake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the request log is in `fake.requests`
            pass

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_DELETE(self):
            self._dispatch("DELETE")

        def _dispatch(self, method: str):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            try:
                if parts.path.startswith("/v1/"):
                    self._api(method, parts.path, parse_form(parts.query if method == "GET" else body))
                else:
                    self._browser(method, parts.path)
            except StripeError as error:
                if parts.path.startswith("/v1/"):
                    self._json(error.status, error.body())
                else:
                    self._send(error.status, "text/html; charset=utf-8", _page("Error", [f"<p>{_e(error)}</p>"]))

        def _api(self, method: str, path: str, params: dict):
            headers = {name.lower(): value for name, value in self.headers.items()}
            with fake.lock:
                fake.requests.append({"method": method, "path": path, "params": params, "headers": headers})
            key = headers.get("idempotency-key") if method == "POST" else None
            if key and key in fake._idempotent:  # a retry of a call that succeeded: Stripe replays it
                status, body = fake._idempotent[key]
                self._json(status, body, {"Idempotent-Replayed": "true"})
                return
            failure = fake._failure_for(path)
            if failure is not None:
                raise failure
            if not _api_key(headers.get("authorization", "")).startswith("sk_"):
                raise StripeError(401, "You did not provide an API key.")
            answer = fake.answer_api(method, path, params)
            if key:
                fake._idempotent[key] = (200, answer)
            self._json(200, answer)

        def _browser(self, method: str, path: str):
            match = re.fullmatch(r"/(checkout|portal)/([\w-]+)(?:/(\w+))?", path)
            if not match:
                raise StripeError(404, "Not found.")
            kind, session_id, action = match.groups()
            if method == "GET" and action is None:
                page = fake.checkout_page(session_id) if kind == "checkout" else fake.portal_page(session_id)
                self._send(200, "text/html; charset=utf-8", page)
            elif method == "POST" and kind == "checkout" and action == "pay":
                self._redirect(fake.pay_checkout(session_id))
            elif method == "POST" and kind == "portal" and action in ("confirm", "cancel"):
                self._redirect(fake.portal_action(session_id, action))
            else:
                raise StripeError(405, "Method not allowed.")

        def _json(self, status: int, body: dict, headers: dict | None = None):
            extra = {"Request-Id": "req_" + secrets.token_hex(8), "Stripe-Version": API_VERSION, **(headers or {})}
            self._send(status, "application/json", json.dumps(body), extra)

        def _redirect(self, location: str):
            self._send(303, "text/plain; charset=utf-8", "", {"Location": location})

        def _send(self, status: int, content_type: str, text: str, headers: dict | None = None):
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="A local fake of Stripe for trying DealDocs' billing by hand.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook", help="where to POST events, e.g. http://localhost:5000/billing/stripe/webhook")
    parser.add_argument("--secret", default="whsec_dev", help="the webhook signing secret (STRIPE_WEBHOOK_SECRET)")
    parser.add_argument("--price-standard", default="price_standard")
    parser.add_argument("--price-extended", default="price_extended")
    parser.add_argument("--currency", default="usd")
    args = parser.parse_args(argv)
    prices = {args.price_standard: DEFAULT_PRICES["price_standard"],
              args.price_extended: DEFAULT_PRICES["price_extended"]}
    fake = StripeFake(prices, currency=args.currency, webhook_url=args.webhook, webhook_secret=args.secret,
                      host=args.host, port=args.port).start()
    print(f"Fake Stripe at {fake.url} (STRIPE_API_BASE={fake.url}); webhooks to {args.webhook or 'nowhere'}",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

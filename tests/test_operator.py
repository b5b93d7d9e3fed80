"""The operator view: platform admins (CLI), their sign-in on the public host, the companies table
(plan, seats, storage, status, MRR, filters, pages), suspend and resume, and `tenants list`.

Plans are set the way the providers set them (billing.services.apply with an offline or a
provider's State, and the provider column Stripe's checkout sets); everything else goes through
real requests on real hosts.
"""
import html
import re
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from saas.cli import cli

from .conftest import PASSWORD, RUN_ID, SERVER_NAME, client_for, csrf_token, from_fresh_address, sign_in
from .test_people import add_person

MB = 1024 * 1024


# --- helpers -------------------------------------------------------------------------------

def run_cli(app, *args):
    return CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app))


def sql(app, statement: str, **params):
    from tenants.db import db

    with app.app_context(), db.engine.begin() as connection:
        result = connection.execute(text(statement), params)
        return result.all() if result.returns_rows else None


def visible(markup: str) -> str:
    """The text a person reads in `markup`: no tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


def page_text(response) -> str:
    main = re.search(r"<main\b.*?</main>", response.get_data(as_text=True), flags=re.S)
    return visible(main.group(0))


def flashes(response) -> list[str]:
    body = response.get_data(as_text=True)
    found = re.findall(r'<div class="flash flash-\w+"[^>]*>(.*?)</div>|<small class="error">(.*?)</small>', body,
                       flags=re.S)
    return [html.unescape(a or b).strip() for a, b in found]


def public(app):
    return from_fresh_address(app, SERVER_NAME)


def operator_sign_in(client, email: str, password: str = PASSWORD):
    token = csrf_token(client.get("/operator/signin").get_data(as_text=True))
    return client.post("/operator/signin", data={"csrf_token": token, "email": email, "password": password})


def operator(app, company):
    """A public-site client signed in as a platform admin (the company's owner, granted by CLI)."""
    assert run_cli(app, "operators", "grant", company.owner_email).exit_code == 0
    client = public(app)
    response = operator_sign_in(client, company.owner_email)
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/operator"
    return client


def sees_the_table(client) -> bool:
    response = client.get("/operator")
    if response.status_code == 302:
        assert urlsplit(response.headers["Location"]).path == "/operator/signin"
        return False
    assert response.status_code == 200
    return True


def row_of(response, company) -> str | None:
    """The text of `company`'s row in the table, or None when it is not listed."""
    match = re.search(rf'<tr id="tenant-{company.id}".*?</tr>', response.get_data(as_text=True), flags=re.S)
    return visible(match.group(0)) if match else None


def set_subscription(app, company, state, *, provider: str = "offline", past_due_days: int | None = None) -> None:
    from billing.services import apply, subscription_of
    from tenants.db import db

    with app.app_context():
        row = subscription_of(company.id, lock=True)
        apply(row, state)
        row.provider = provider  # (a completed Stripe checkout sets it; apply() leaves it alone)
        db.session.commit()
    if past_due_days is not None:
        sql(app, "UPDATE public.subscriptions SET past_due_since = now() - make_interval(days => :d)"
                 " WHERE tenant_id = :t", d=past_due_days, t=company.id)


def set_stored(app, company, size: int) -> None:
    sql(app, "INSERT INTO public.storage_ledger (tenant_id, used_bytes, reserved_bytes) VALUES (:t, :b, 0)"
             " ON CONFLICT (tenant_id) DO UPDATE SET used_bytes = :b", t=company.id, b=size)


def tenant_status(app, company) -> str:
    return sql(app, "SELECT status FROM public.tenants WHERE id = :t", t=company.id)[0].status


@pytest.fixture
def tag():
    """A word in the names of this test's companies: `?q=` narrows the shared table to them."""
    return f"Zq{uuid.uuid4().hex[:8]}"


@pytest.fixture
def portfolio(app, make_tenant, tag):
    """Six companies, one in each situation the table distinguishes. Only two pay: Standard ($18.00)
    and Late ($9.00, while Stripe retries), so the MRR is $27.00."""
    from billing.models import Status
    from billing.services import State, offline_state

    free = make_tenant(name=f"{tag} Free")
    set_stored(app, free, 5 * MB)

    standard = make_tenant(name=f"{tag} Standard")
    add_person(app, standard)  # two active people: two seats, 2 × 500 MB
    set_subscription(app, standard, State("standard", Status.ACTIVE, 2, 1800, "usd"), provider="stripe")
    set_stored(app, standard, 300 * MB)

    offline = make_tenant(name=f"{tag} Offline")  # on Standard without paying: its amount is the list price
    set_subscription(app, offline, offline_state("standard", 1))

    trial = make_tenant(name=f"{tag} Trial")
    set_subscription(app, trial, State("extended", Status.TRIALING, 1, 1500, "usd"), provider="stripe")

    late = make_tenant(name=f"{tag} Late")
    set_subscription(app, late, State("standard", Status.PAST_DUE, 1, 900, "usd"), provider="stripe",
                     past_due_days=8)
    set_stored(app, late, 300 * MB)

    closed = make_tenant(name=f"{tag} Closed")  # Stripe still bills it, but it is not served
    set_subscription(app, closed, State("standard", Status.ACTIVE, 1, 900, "usd"), provider="stripe")
    sql(app, "UPDATE public.tenants SET status = 'suspended' WHERE id = :t", t=closed.id)
    return {"free": free, "standard": standard, "offline": offline, "trial": trial, "late": late, "closed": closed}


# --- platform admins from the command line ---------------------------------------------------

def test_operators_grant_list_and_revoke_from_the_cli(app, make_tenant):
    company = make_tenant()
    email = company.owner_email

    unknown = run_cli(app, "operators", "grant", "nobody-" + uuid.uuid4().hex[:8] + "@example.com")
    assert unknown.exit_code != 0 and "No account uses" in unknown.output
    assert email not in run_cli(app, "operators", "list").output

    granted = run_cli(app, "operators", "grant", email.upper())  # however the address is typed
    assert granted.exit_code == 0, granted.output
    assert sql(app, "SELECT platform_admin FROM public.users WHERE id = :u", u=company.owner_id)[0][0] is True
    assert email in run_cli(app, "operators", "list").output

    revoked = run_cli(app, "operators", "revoke", email)
    assert revoked.exit_code == 0 and "no longer a platform admin" in revoked.output
    assert sql(app, "SELECT platform_admin FROM public.users WHERE id = :u", u=company.owner_id)[0][0] is False
    assert email not in run_cli(app, "operators", "list").output
    again = run_cli(app, "operators", "revoke", email)
    assert again.exit_code == 0 and "was not a platform admin" in again.output
    assert run_cli(app, "operators", "revoke", "nobody@nowhere.example").exit_code != 0


# --- signing in ----------------------------------------------------------------------------

def test_a_platform_admin_signs_in_on_the_public_site_and_out_again(app, make_tenant):
    company = make_tenant()
    client = operator(app, company)
    assert sees_the_table(client)
    assert client.get("/operator/signin").status_code == 302  # already signed in: to the table

    copy = public(app)
    copy.set_cookie("session", client.get_cookie("session", domain=SERVER_NAME.split(":")[0]).value,
                    domain=SERVER_NAME.split(":")[0])
    assert sees_the_table(copy)
    token = csrf_token(client.get("/operator").get_data(as_text=True))
    assert client.post("/operator/signout", data={"csrf_token": token}).status_code == 302
    assert not sees_the_table(client)
    assert not sees_the_table(copy)  # the session ended on the server: copies of the cookie too


def test_wrong_password_unknown_email_and_non_admin_get_the_same_refusal(app, make_tenant):
    admin, member = make_tenant(), make_tenant()
    run_cli(app, "operators", "grant", admin.owner_email)
    answers = []
    for email, password in ((admin.owner_email, "wrong password!"),
                            (f"nobody-{uuid.uuid4().hex[:8]}@example.com", PASSWORD),
                            (member.owner_email, member.password)):  # a company owner, not an operator
        client = public(app)
        response = operator_sign_in(client, email, password)
        assert response.status_code == 401
        answers.append(flashes(response))
        assert not sees_the_table(client)
    assert answers[0] == answers[1] == answers[2] == ["Wrong email or password, or no operator access."]


def test_operator_sign_in_draws_on_the_password_attempt_limit(tuned_app, make_tenant):
    limited = tuned_app(SIGNIN_RATE_LIMIT="3 per minute")
    company = make_tenant()
    run_cli(limited, "operators", "grant", company.owner_email)
    client = public(limited)
    for _ in range(3):
        assert operator_sign_in(client, company.owner_email, "wrong password!").status_code == 401
    refused = operator_sign_in(client, company.owner_email, company.password)
    assert refused.status_code == 429
    assert not sees_the_table(client)


def test_a_company_session_gives_nothing_on_the_operator_page(app, make_tenant):
    company = make_tenant()
    run_cli(app, "operators", "grant", company.owner_email)  # even a platform admin's company session
    at_company = sign_in(app, company)
    assert at_company.get("/operator").status_code == 404

    public_client = public(app)
    public_client.set_cookie("session", at_company.get_cookie("session", domain=company.host.split(":")[0]).value,
                             domain=SERVER_NAME.split(":")[0])
    assert not sees_the_table(public_client)


def test_an_operator_session_gives_nothing_on_a_company_host(app, make_tenant):
    company = make_tenant()
    client = operator(app, company)
    at_company = client_for(app, company)
    at_company.set_cookie("session", client.get_cookie("session", domain=SERVER_NAME.split(":")[0]).value,
                          domain=company.host.split(":")[0])
    response = at_company.get("/")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/signin"


def test_revoking_the_right_stops_access_on_the_next_request(app, make_tenant):
    company = make_tenant()
    flag_client = operator(app, company)
    cli_client = public(app)
    assert operator_sign_in(cli_client, company.owner_email).status_code == 302

    # The flag is read on every request: even a change behind the CLI's back counts at once…
    sql(app, "UPDATE public.users SET platform_admin = false WHERE id = :u", u=company.owner_id)
    assert not sees_the_table(flag_client)
    sql(app, "UPDATE public.users SET platform_admin = true WHERE id = :u", u=company.owner_id)
    assert not sees_the_table(flag_client)  # …and that session stays over

    assert sees_the_table(cli_client)
    assert run_cli(app, "operators", "revoke", company.owner_email).exit_code == 0
    assert not sees_the_table(cli_client)
    assert run_cli(app, "operators", "grant", company.owner_email).exit_code == 0
    assert not sees_the_table(cli_client)  # granting again does not revive old cookies


def test_operator_pages_are_404_on_company_hosts(app, make_tenant):
    company = make_tenant()
    client = client_for(app, company)
    for path in ("/operator", "/operator/signin", "/operator?plan=free"):
        assert client.get(path).status_code == 404
    signed_in = sign_in(app, company)
    assert signed_in.get("/operator").status_code == 404


# --- the companies table -------------------------------------------------------------------

def test_the_table_shows_plan_seats_storage_status_provider_and_mrr(app, make_tenant, portfolio, tag):
    client = operator(app, portfolio["free"])
    response = client.get(f"/operator?q={tag}")
    assert response.status_code == 200

    assert row_of(response, portfolio["free"]) == (
        f"{portfolio['free'].id} {tag} Free {portfolio['free'].slug} Free 1 5.0 MB / 200.0 MB active offline — Suspend")
    assert row_of(response, portfolio["standard"]) == (
        f"{portfolio['standard'].id} {tag} Standard {portfolio['standard'].slug} Standard 2 300.0 MB / 1000.0 MB "
        "active stripe $18.00 Suspend")
    # Offline: Standard's limits, but nobody pays the list price it carries.
    assert row_of(response, portfolio["offline"]).endswith("Standard 1 0 B / 500.0 MB active offline — Suspend")
    # A trial brings no revenue yet; Extended has no storage limit.
    assert row_of(response, portfolio["trial"]).endswith("Extended 1 0 B / unlimited trialing stripe — Suspend")
    # Past due beyond the grace period: still Standard and still owed, but held to Free's 200 MB.
    assert row_of(response, portfolio["late"]).endswith(
        "Standard 1 300.0 MB / 200.0 MB past due · Free limits stripe $9.00 Suspend")
    # Suspension wins over the subscription's state, and a company not served brings no revenue.
    assert row_of(response, portfolio["closed"]).endswith("Standard 1 0 B / 500.0 MB suspended stripe — Resume")

    text_ = page_text(response)
    assert "6 companies" in text_ and "MRR: $27.00" in text_
    body = response.get_data(as_text=True)
    assert f'href="http://{portfolio["free"].slug}.{SERVER_NAME}/"' in body  # the slug links to its host


def test_past_due_within_the_grace_period_keeps_the_plans_limit(app, make_tenant, tag):
    from billing.models import Status
    from billing.services import State

    company = make_tenant(name=f"{tag} Recent")
    set_subscription(app, company, State("standard", Status.PAST_DUE, 1, 900, "usd"), provider="stripe",
                     past_due_days=2)
    response = operator(app, company).get(f"/operator?q={tag}")
    assert row_of(response, company).endswith("Standard 1 0 B / 500.0 MB past due stripe $9.00 Suspend")


def test_filters_by_plan_status_and_name(app, portfolio, tag):
    client = operator(app, portfolio["free"])

    def listed(query: str) -> set[str]:
        response = client.get(f"/operator?q={tag}&{query}")
        assert response.status_code == 200
        return {key for key, company in portfolio.items() if row_of(response, company) is not None}

    assert listed("") == set(portfolio)
    assert listed("plan=standard") == {"standard", "offline", "late", "closed"}
    assert listed("plan=extended") == {"trial"}
    assert listed("status=past_due") == {"late"}
    assert listed("status=suspended") == {"closed"}
    assert listed("status=active") == {"free", "standard", "offline"}
    assert listed("status=trialing") == {"trial"}
    assert listed("plan=standard&status=active") == {"standard", "offline"}
    assert "MRR: $18.00" in page_text(client.get(f"/operator?q={tag}&plan=standard&status=active"))

    nothing = client.get(f"/operator?q={tag}&plan=free&status=suspended")
    assert "No companies match these filters." in page_text(nothing)
    unknown = client.get(f"/operator?q={tag}&plan=platinum")
    assert flashes(unknown) == ["Unknown plan “platinum”."]
    assert {key for key, company in portfolio.items() if row_of(unknown, company)} == set(portfolio)


def test_each_unknown_filter_is_dropped_with_its_own_message(app, portfolio, tag):
    client = operator(app, portfolio["free"])

    both = client.get(f"/operator?q={tag}&plan=platinum&status=bogus")
    assert both.status_code == 200
    assert flashes(both) == ["Unknown plan “platinum”.", "Unknown status “bogus”."]
    assert {key for key, company in portfolio.items() if row_of(both, company)} == set(portfolio)

    # A known filter next to an unknown one still applies.
    one = client.get(f"/operator?q={tag}&plan=extended&status=bogus")
    assert one.status_code == 200
    assert flashes(one) == ["Unknown status “bogus”."]
    assert {key for key, company in portfolio.items() if row_of(one, company)} == {"trial"}


def test_the_table_comes_in_pages_and_from_two_queries_whatever_the_number_of_companies(app, portfolio, tag):
    from saas.operator.services import tenant_table
    from tenants.db import db

    with app.app_context():
        statements = []
        def listener(connection, cursor, statement, *args):
            if not statement.startswith("SELECT set_config("):  # (the transaction's scope, not a query)
                statements.append(statement)
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            first = tenant_table(search=tag, per_page=2)
            assert len(statements) == 2
            everything = tenant_table()  # every company in the database
            assert len(statements) == 4 and everything.total >= 5
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        second = tenant_table(search=tag, per_page=2, page=2)
        last = tenant_table(search=tag, per_page=2, page=99)  # past the end: the last page
    ids = sorted(company.id for company in portfolio.values())
    assert (first.total, first.pages, first.page) == (6, 3, 1)
    assert [row.id for row in first.rows] == ids[:2]
    assert [row.id for row in second.rows] == ids[2:4]
    assert (last.page, [row.id for row in last.rows]) == (3, ids[4:])
    assert first.mrr_totals == second.mrr_totals == {"usd": 2700}  # over every page


# --- suspend and resume --------------------------------------------------------------------

def test_suspend_makes_the_company_host_403_and_resume_restores_it(app, make_tenant, tag):
    target = make_tenant(name=f"{tag} Target")
    client = operator(app, make_tenant(name=f"{tag} Ops"))
    assert client_for(app, target).get("/signin").status_code == 200

    token = csrf_token(client.get(f"/operator?q={tag}").get_data(as_text=True))
    response = client.post(f"/operator/tenants/{target.id}/suspend?q={tag}", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == f"/operator?q={tag}"
    assert tenant_status(app, target) == "suspended"
    assert client_for(app, target).get("/signin").status_code == 403
    shown = client.get(response.headers["Location"])
    assert any("is suspended" in message for message in flashes(shown))
    assert "Resume" in row_of(shown, target)

    response = client.post(f"/operator/tenants/{target.id}/resume", data={"csrf_token": token})
    assert response.status_code == 302
    assert tenant_status(app, target) == "active"
    assert client_for(app, target).get("/signin").status_code == 200


def test_suspend_needs_the_csrf_token_and_an_operator(app, make_tenant):
    target, attacker = make_tenant(), make_tenant()
    client = operator(app, make_tenant())
    assert client.post(f"/operator/tenants/{target.id}/suspend").status_code == 400
    other = public(app)
    other_token = csrf_token(other.get("/operator/signin").get_data(as_text=True))
    assert client.post(f"/operator/tenants/{target.id}/suspend",
                       data={"csrf_token": other_token}).status_code == 400  # another session's token
    assert tenant_status(app, target) == "active"

    # Company A's owner, no operator, tries to suspend company B: from the public site…
    outsider = public(app)
    token = csrf_token(outsider.get("/operator/signin").get_data(as_text=True))
    response = outsider.post(f"/operator/tenants/{target.id}/suspend", data={"csrf_token": token})
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/operator/signin"
    # …and from their own company's host, signed in there.
    at_home = sign_in(app, attacker)
    token = csrf_token(at_home.get("/people").get_data(as_text=True))
    assert at_home.post(f"/operator/tenants/{target.id}/suspend", data={"csrf_token": token}).status_code == 404
    assert tenant_status(app, target) == "active"


def test_suspending_an_unknown_company_is_404(app, make_tenant):
    client = operator(app, make_tenant())
    token = csrf_token(client.get("/operator").get_data(as_text=True))
    assert client.post("/operator/tenants/999999999/suspend", data={"csrf_token": token}).status_code == 404


# --- `dealdocs tenants list` ---------------------------------------------------------------

def _listed(output: str) -> dict[str, str]:
    """slug → its line."""
    return {line.split()[1]: line for line in output.splitlines()[1:-1]}


def _money(text_: str) -> Decimal:
    return Decimal(text_.replace(",", ""))


def test_tenants_list_filters_by_plan_and_status_and_totals_mrr(app, portfolio):
    result = run_cli(app, "tenants", "list", "--plan", "standard")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "SLUG", "STATUS", "PLAN", "SEATS", "STORAGE", "MRR", "NAME"]
    listed = _listed(result.output)
    assert {portfolio[k].slug for k in ("standard", "offline", "late", "closed")} <= set(listed)
    assert portfolio["free"].slug not in listed and portfolio["trial"].slug not in listed
    assert all(line.split()[3] == "standard" for line in listed.values())
    assert re.search(r"\bactive\s+standard\s+2\s+300\.0 MB / 1000\.0 MB\s+18\.00 USD\b",
                     listed[portfolio["standard"].slug])
    assert re.search(r"\bpast_due\s+standard\s+1\s+300\.0 MB / 200\.0 MB\s+9\.00 USD\b",
                     listed[portfolio["late"].slug])
    # The same MRR as the page: nothing for an offline subscription or a suspended company.
    assert re.search(r"\bactive\s+standard\s+1\s+0 B / 500\.0 MB\s+-\s", listed[portfolio["offline"].slug])
    assert re.search(r"\bsuspended\s+standard\s+1\s+0 B / 500\.0 MB\s+-\s", listed[portfolio["closed"].slug])
    # The total is the sum of the MRR column (every Standard company in this database).
    amounts = [_money(m.group(1)) for line in listed.values() if (m := re.search(r"([\d,]+\.\d\d) USD", line))]
    total = re.fullmatch(r"(\d+) tenant\(s\)\. Total MRR: ([\d,]+\.\d\d) USD", lines[-1])
    assert total, lines[-1]
    assert int(total.group(1)) == len(listed) and _money(total.group(2)) == sum(amounts)

    suspended = _listed(run_cli(app, "tenants", "list", "--status", "suspended").output)
    assert portfolio["closed"].slug in suspended and portfolio["standard"].slug not in suspended
    assert run_cli(app, "tenants", "list", "--plan", "platinum").exit_code != 0
    bogus = run_cli(app, "tenants", "list", "--status", "bogus")
    assert bogus.exit_code != 0 and "'past_due'" in bogus.output  # the choices are the page's statuses
    assert "[free|standard|extended]" in run_cli(app, "tenants", "list", "--help").output


# --- an empty platform ---------------------------------------------------------------------

@pytest.fixture
def empty_app(make_app, database_url):
    """An app on a database of its own, with no company at all."""
    name = f"dealdocs_test_{RUN_ID}_empty_{uuid.uuid4().hex[:6]}"
    admin = create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    empty = make_app(SQLALCHEMY_DATABASE_URI=url, TENANT_POOL_SIZE=0)
    from saas.maintenance import upgrade_everything
    from tenants.db import db

    with empty.app_context():
        upgrade_everything(jobs=1, echo=lambda *_: None)
    yield empty
    with empty.app_context():
        db.engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_an_empty_platform_says_so(empty_app):
    from saas.auth.models import User
    from saas.auth.passwords import hash_password
    from tenants.db import db

    assert "No tenants yet" in run_cli(empty_app, "tenants", "list").output
    assert "No platform admins yet" in run_cli(empty_app, "operators", "list").output
    email = "ops@example.com"
    with empty_app.app_context():
        db.session.add(User(email=email, name="Ops", password_hash=hash_password(PASSWORD)))
        db.session.commit()
    assert run_cli(empty_app, "operators", "grant", email).exit_code == 0
    client = public(empty_app)
    assert operator_sign_in(client, email).status_code == 302
    assert "No companies yet." in page_text(client.get("/operator"))


# --- in a browser --------------------------------------------------------------------------

@pytest.mark.browser
def test_an_operator_filters_and_suspends_in_the_browser(app, live_server, page, make_tenant, tag):
    target = make_tenant(name=f"{tag} Browser")
    ops = make_tenant(name=f"{tag} Ops")
    assert run_cli(app, "operators", "grant", ops.owner_email).exit_code == 0
    page.goto(f"{live_server}/operator")
    page.fill("input[name=email]", ops.owner_email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.fill("input[name=q]", tag)
    page.click("text=Show")
    row = page.locator(f"#tenant-{target.id}")
    assert "active" in row.inner_text()

    page.once("dialog", lambda dialog: dialog.dismiss())
    row.locator("text=Suspend").click()
    assert tenant_status(app, target) == "active"  # the confirmation was declined
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("text=Suspend").click()
    page.wait_for_selector(f"#tenant-{target.id}.status-suspended")
    assert tenant_status(app, target) == "suspended"
    assert f"q={tag}" in page.url

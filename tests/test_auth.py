"""Sign-up, sign-in and web sessions, through real HTTP requests on real hosts.

The public site is the bare SERVER_NAME; each company lives on `<slug>.<SERVER_NAME>`.
Every refusal is checked twice: the answer a person sees, and the database left unchanged.
"""
import html
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import text

from .conftest import PASSWORD, SERVER_NAME, client_for, csrf_token, from_fresh_address, sign_in, unique_slug


# --- helpers -------------------------------------------------------------------------------

def sql(app, statement: str, **params):
    """Rows of a plain SQL query against the real database (public schema)."""
    from tenants.db import db

    with app.app_context():
        with db.engine.connect() as connection:
            return connection.execute(text(statement), params).all()


def tenant_row(app, slug: str):
    rows = sql(app, "SELECT id, name, slug FROM public.tenants WHERE slug = :slug", slug=slug)
    return rows[0] if rows else None


def tenant_schemas(app) -> set[str]:
    return {row.nspname for row in sql(app, "SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9]+$'")}


def user_count(app, email: str) -> int:
    return sql(app, "SELECT count(*) AS n FROM public.users WHERE email = :email", email=email.lower())[0].n


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def field_errors(response, name: str) -> list[str]:
    """The error messages shown inside the <label> that holds the input named `name`."""
    body = response.get_data(as_text=True)
    for label in re.findall(r"<label\b.*?</label>", body, flags=re.S):
        if re.search(rf'\bname="{re.escape(name)}"', label):
            return [html.unescape(e) for e in re.findall(r'<small class="error">(.*?)</small>', label, flags=re.S)]
    raise AssertionError(f"no field named {name!r} in the page")


def messages(response) -> list[str]:
    """Every flash message and field error on the page, in order."""
    body = response.get_data(as_text=True)
    found = re.findall(r'<div class="flash flash-\w+"[^>]*>(.*?)</div>|<small class="error">(.*?)</small>', body, flags=re.S)
    return [html.unescape(a or b).strip() for a, b in found]


def public(app):
    return client_for(app, SERVER_NAME)


def signup_data(slug: str | None = None, **overrides) -> dict:
    slug = slug if slug is not None else unique_slug("su")
    return {"company_name": "Romashka LLC", "slug": slug, "owner_name": "Olga Owner",
            "email": f"olga-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD, **overrides}


def post_signup(client, **data):
    token = csrf_token(client.get("/signup").get_data(as_text=True))
    return client.post("/signup", data={"csrf_token": token, **data})


def host_of(location: str) -> str:
    return urlsplit(location).netloc


def path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def is_signed_in(client) -> bool:
    """A signed-in person gets the dashboard at /; anyone else is sent to /signin."""
    response = client.get("/")
    if response.status_code == 302:
        assert urlsplit(response.headers["Location"]).path == "/signin"
        return False
    assert response.status_code == 200
    return True


def sign_in_form(client, email: str, password: str, **extra):
    token = csrf_token(client.get("/signin").get_data(as_text=True))
    return client.post("/signin", data={"csrf_token": token, "email": email, "password": password, **extra})


def copy_cookie(source, source_host: str, target, target_host: str, name: str = "session") -> None:
    cookie = source.get_cookie(name, domain=source_host.split(":")[0])
    assert cookie is not None, f"no {name} cookie on {source_host}"
    target.set_cookie(name, cookie.value, domain=target_host.split(":")[0])


# --- web sign-up ---------------------------------------------------------------------------

def test_signup_creates_the_company_and_hands_the_owner_off_signed_in(app):
    client = public(app)
    data = signup_data()
    schemas_before = tenant_schemas(app)

    response = post_signup(client, **data)

    assert response.status_code == 302
    location = response.headers["Location"]
    assert host_of(location) == f"{data['slug']}.{SERVER_NAME}"
    assert urlsplit(location).path == "/auth/handoff"
    assert parse_qs(urlsplit(location).query)["token"][0]

    row = tenant_row(app, data["slug"])
    assert row is not None and row.name == "Romashka LLC"
    assert tenant_schemas(app) - schemas_before == {f"t_{row.id}"}
    roles = sql(app, "SELECT m.role, u.name FROM public.memberships m JOIN public.users u ON u.id = m.user_id "
                     "WHERE m.tenant_id = :t", t=row.id)
    assert [(r.role, r.name) for r in roles] == [("owner", "Olga Owner")]
    # Nobody is signed in on the public site: the session is made on the company's host.
    assert "Sign out" not in page_text(client.get("/"))

    company = client_for(app, host_of(location))
    landed = company.get(path_of(location))
    assert landed.status_code == 302 and urlsplit(landed.headers["Location"]).path == "/"
    dashboard = company.get("/")
    assert dashboard.status_code == 200
    body = page_text(dashboard)
    assert "Romashka LLC" in body and "Olga Owner" in body and "Sign out" in body


def test_handoff_link_is_single_use(app):
    response = post_signup(public(app), **signup_data())
    location = response.headers["Location"]

    first = client_for(app, host_of(location))
    first.get(path_of(location))
    assert is_signed_in(first)

    replay = client_for(app, host_of(location))
    again = replay.get(path_of(location))
    assert again.status_code == 302 and urlsplit(again.headers["Location"]).path == "/signin"
    assert "already used" in page_text(replay.get("/signin"))
    assert not is_signed_in(replay)


def test_handoff_link_expires(app):
    response = post_signup(public(app), **signup_data())
    location = response.headers["Location"]
    token = parse_qs(urlsplit(location).query)["token"][0]

    from saas.auth import services

    class AnHourAgo(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - 3600

    with app.test_request_context():
        real = services._handoff_serializer()
        payload = real.loads(token)  # the genuine pass, signed with the app's key…
        old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=real.salt, signer=AnHourAgo)
        stale = old.dumps(payload)  # …as if it had been minted an hour ago

    client = client_for(app, host_of(location))
    answer = client.get("/auth/handoff", query_string={"token": stale, "next": "/"})
    assert answer.status_code == 302 and urlsplit(answer.headers["Location"]).path == "/signin"
    assert "expired" in page_text(client.get("/signin"))
    assert not is_signed_in(client)


def test_handoff_for_company_a_signs_nobody_in_at_company_b(app, make_tenant):
    b = make_tenant(name="Globex")
    location = post_signup(public(app), **signup_data()).headers["Location"]

    at_b = client_for(app, b)
    answer = at_b.get(path_of(location))
    assert answer.status_code == 302 and urlsplit(answer.headers["Location"]).path == "/signin"
    assert not is_signed_in(at_b)

    forged = client_for(app, b)
    assert forged.get("/auth/handoff", query_string={"token": "not-a-token"}).status_code == 302
    assert not is_signed_in(forged)


def test_uppercase_and_spaced_slug_is_lowered_and_trimmed(app):
    slug = unique_slug("up")
    response = post_signup(public(app), **signup_data(slug=f"  {slug.upper()} "))
    assert response.status_code == 302
    assert host_of(response.headers["Location"]) == f"{slug}.{SERVER_NAME}"
    assert tenant_row(app, slug) is not None


RESERVED = ["www", "api", "admin", "app", "WWW", "static", "signup"]
MALFORMED = ["my company", "-acme", "acme-", "a" * 41, "acme.corp", "компания", "acme_corp", "acme!", ""]


@pytest.mark.parametrize("slug", RESERVED + MALFORMED)
def test_reserved_and_malformed_slugs_are_refused_next_to_the_field(app, slug):
    data = signup_data(slug=slug, email=f"x-{uuid.uuid4().hex[:8]}@example.com")
    schemas_before = tenant_schemas(app)

    response = post_signup(public(app), **data)

    assert response.status_code == 422
    errors = field_errors(response, "slug")
    assert len(errors) == 1
    if slug in RESERVED:
        assert "reserved" in errors[0]
    elif slug == "":
        assert "required" in errors[0]
    elif len(slug) > 40:
        assert "40" in errors[0]
    else:
        assert "Latin letters, digits or hyphens" in errors[0]
    assert tenant_row(app, slug.strip().lower()) is None
    assert user_count(app, data["email"]) == 0
    assert tenant_schemas(app) == schemas_before


def test_a_taken_slug_is_refused(app, make_tenant):
    taken = make_tenant(name="First")
    data = signup_data(slug=taken.slug.upper())
    response = post_signup(public(app), **data)
    assert response.status_code == 422
    assert "is taken" in field_errors(response, "slug")[0]
    assert sql(app, "SELECT name FROM public.tenants WHERE slug = :s", s=taken.slug)[0].name == "First"
    assert user_count(app, data["email"]) == 0


@pytest.mark.parametrize("field,value,message", [
    ("email", "not-an-email", "valid email"),
    ("email", "olga@", "valid email"),
    ("password", "short", "at least 8 characters"),
    ("company_name", "   ", "required"),
])
def test_bad_owner_details_are_refused_and_nothing_is_created(app, field, value, message):
    data = signup_data()
    data[field] = value
    schemas_before = tenant_schemas(app)

    response = post_signup(public(app), **data)

    assert response.status_code == 422
    assert any(message in e for e in field_errors(response, field)), field_errors(response, field)
    assert tenant_row(app, data["slug"]) is None
    assert user_count(app, data["email"]) == 0
    assert tenant_schemas(app) == schemas_before


def test_an_existing_person_adds_a_second_company_with_their_password(app, make_tenant):
    first = make_tenant(name="First Co")
    data = signup_data(email=first.owner_email.upper(), company_name="Second Co")

    response = post_signup(public(app), **data)

    assert response.status_code == 302
    companies = sql(app, "SELECT t.slug, m.role FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id "
                         "WHERE m.user_id = :u ORDER BY t.id", u=first.owner_id)
    assert [(c.slug, c.role) for c in companies] == [(first.slug, "owner"), (data["slug"], "owner")]
    assert user_count(app, first.owner_email) == 1

    # One person, one password: the old company still signs them in with it.
    sign_in(app, first)


def test_an_existing_email_with_a_wrong_password_creates_nothing(app, make_tenant):
    first = make_tenant()
    data = signup_data(email=first.owner_email, password="a wrong password")
    schemas_before = tenant_schemas(app)

    response = post_signup(public(app), **data)

    assert response.status_code == 422
    assert "already exists" in field_errors(response, "email")[0]
    assert tenant_row(app, data["slug"]) is None
    assert tenant_schemas(app) == schemas_before
    assert len(sql(app, "SELECT 1 FROM public.memberships WHERE user_id = :u", u=first.owner_id)) == 1


def test_signup_exists_only_on_the_public_site(app, make_tenant):
    company = make_tenant()
    assert client_for(app, company).get("/signup").status_code == 404
    assert public(app).get("/signup").status_code == 200


# --- sign-in, sessions, sign-out -----------------------------------------------------------

def test_owner_signs_in_on_the_company_host(app, make_tenant):
    company = make_tenant(name="Romashka")
    client = client_for(app, company)
    response = sign_in_form(client, f"  {company.owner_email.upper()} ", company.password)
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/"
    assert "Romashka" in page_text(client.get("/"))


def test_wrong_password_and_unknown_email_get_the_same_answer(app, make_tenant):
    company = make_tenant()
    wrong_password = sign_in_form(client_for(app, company), company.owner_email, "wrong password!")
    unknown_email = sign_in_form(client_for(app, company), "nobody@example.com", company.password)

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert messages(wrong_password) == messages(unknown_email) == ["Wrong email or password for this company."]


def test_a_person_cannot_sign_in_where_they_are_not_a_member(app, make_tenant):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    client = client_for(app, b)
    response = sign_in_form(client, a.owner_email, a.password)
    assert response.status_code == 401
    assert "Wrong email or password for this company." in page_text(response)
    assert not is_signed_in(client)


def test_a_session_cookie_from_company_a_does_not_sign_in_at_company_b(app, make_tenant):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    at_a = sign_in(app, a)
    assert is_signed_in(at_a)

    at_b = client_for(app, b)
    copy_cookie(at_a, a.host, at_b, b.host)
    assert at_b.get_cookie("session", domain=b.host.split(":")[0]) is not None
    assert not is_signed_in(at_b)
    people = at_b.get("/people")
    assert people.status_code == 302 and urlsplit(people.headers["Location"]).path == "/signin"


def test_a_session_cookie_of_a_person_in_both_companies_still_counts_only_where_issued(app, make_tenant):
    a = make_tenant(name="Acme")
    b = make_tenant(name="Globex", owner_email=a.owner_email)  # the same person owns both
    at_a = sign_in(app, a)
    at_b = client_for(app, b)
    copy_cookie(at_a, a.host, at_b, b.host)
    assert not is_signed_in(at_b)


def test_sign_out_needs_csrf_and_ends_the_session(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)

    assert client.post("/signout").status_code == 400
    assert is_signed_in(client)

    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.post("/signout", data={"csrf_token": token})
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/signin"
    assert not is_signed_in(client)


def test_sign_out_is_final_even_for_a_copy_of_the_old_cookie(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    stolen = client.get_cookie("session", domain=company.host.split(":")[0]).value
    client.post("/signout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    assert not is_signed_in(client)

    thief = client_for(app, company)
    thief.set_cookie("session", stolen, domain=company.host.split(":")[0])
    # A signed cookie alone would still be valid here; the session's server-side record is not.
    assert not is_signed_in(thief)


@pytest.mark.parametrize("target", ["//evil.example.com/", "/\\evil.example.com", "https://evil.example.com/",
                                    "/\t/evil.example.com", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_the_company_host(app, make_tenant, target):
    company = make_tenant()
    client = client_for(app, company)
    response = sign_in_form(client, company.owner_email, company.password, next=target)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == "/", location


@pytest.mark.parametrize("target", ["//evil.example.com/", "/\\evil.example.com", "/\t/evil.example.com",
                                    "https://evil.example.com/"])
def test_handoff_never_redirects_off_the_company_host(app, target):
    location = post_signup(public(app), **signup_data()).headers["Location"]
    token = parse_qs(urlsplit(location).query)["token"][0]
    client = client_for(app, host_of(location))
    response = client.get("/auth/handoff", query_string={"token": token, "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert is_signed_in(client)


def test_handoff_does_not_exist_on_the_public_site(app):
    location = post_signup(public(app), **signup_data()).headers["Location"]
    assert public(app).get(path_of(location)).status_code == 404


def test_sign_in_follows_a_local_next(app, make_tenant):
    company = make_tenant()
    client = client_for(app, company)
    first = client.get("/people")
    assert first.status_code == 302
    next_path = parse_qs(urlsplit(first.headers["Location"]).query)["next"][0]
    assert next_path == "/people"
    page = client.get(path_of(first.headers["Location"]))
    response = client.post(path_of(first.headers["Location"]), data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": company.owner_email,
        "password": company.password, "next": next_path})
    assert response.status_code == 302 and response.headers["Location"] == "/people"


# --- CSRF ----------------------------------------------------------------------------------

def test_signin_without_csrf_is_refused(app, make_tenant):
    company = make_tenant()
    client = client_for(app, company)
    client.get("/signin")
    response = client.post("/signin", data={"email": company.owner_email, "password": company.password})
    assert response.status_code == 400
    assert not is_signed_in(client)


def test_signup_without_csrf_is_refused_and_creates_nothing(app):
    client = public(app)
    client.get("/signup")
    data = signup_data()
    response = client.post("/signup", data=data)
    assert response.status_code == 400
    assert "could not be read" in page_text(response)
    assert tenant_row(app, data["slug"]) is None
    assert user_count(app, data["email"]) == 0


def test_a_csrf_token_from_another_session_is_refused(app, make_tenant):
    company = make_tenant()
    other = client_for(app, company)
    token = csrf_token(other.get("/signin").get_data(as_text=True))
    client = client_for(app, company)
    client.get("/signin")
    response = client.post("/signin", data={"csrf_token": token, "email": company.owner_email,
                                            "password": company.password})
    assert response.status_code == 400
    assert not is_signed_in(client)


# --- rate limits ---------------------------------------------------------------------------

def test_the_fourth_sign_in_a_minute_is_refused(limited_app, make_tenant):
    company = make_tenant()
    client = from_fresh_address(limited_app, company.host)
    for _ in range(3):
        assert sign_in_form(client, company.owner_email, "wrong password!").status_code == 401
    refused = sign_in_form(client, company.owner_email, company.password)
    assert refused.status_code == 429
    assert "Too many attempts" in page_text(refused)
    assert not is_signed_in(client)
    # Only POSTs count: the page itself still opens.
    assert client.get("/signin").status_code == 200


def test_the_third_sign_up_a_minute_is_refused(limited_app):
    client = from_fresh_address(limited_app, SERVER_NAME)
    for _ in range(2):
        assert post_signup(client, **signup_data(slug="www")).status_code == 422
    data = signup_data()
    refused = post_signup(client, **data)
    assert refused.status_code == 429
    assert "Too many attempts" in page_text(refused)
    assert tenant_row(limited_app, data["slug"]) is None


def test_a_hash_with_old_parameters_is_upgraded_at_sign_in(app, make_tenant):
    from argon2 import PasswordHasher

    from saas.auth.passwords import needs_rehash
    from tenants.db import db

    company = make_tenant()
    old_hash = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(company.password)
    with app.app_context():
        db.session.execute(text("UPDATE public.users SET password_hash = :h WHERE id = :i"),
                           {"h": old_hash, "i": company.owner_id})
        db.session.commit()
    sign_in(app, company)  # the old hash still verifies…
    with app.app_context():
        stored = db.session.execute(text("SELECT password_hash FROM public.users WHERE id = :i"),
                                    {"i": company.owner_id}).scalar()
    assert stored != old_hash and not needs_rehash(stored)  # …and is replaced
    sign_in(app, company)


# --- password attempts: one budget per address, one per account ----------------------------
#
# Every route that checks a password (web sign-in, API tokens, web and API sign-up with an
# existing email, accepting an invitation as an existing person) spends from the same two
# budgets: the client address's (SIGNIN_RATE_LIMIT) and the named account's
# (SIGNIN_ACCOUNT_RATE_LIMIT). Apps made here share the limiter's storage with every other
# app of the run, so each test uses addresses and accounts nobody else uses.

def fresh_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def forwarded_client(app, host: str, remote_address: str, forwarded_for: str):
    """A client connecting from `remote_address` with an X-Forwarded-For header."""
    client = client_for(app, host)
    client.environ_base["REMOTE_ADDR"] = remote_address
    client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def dispose(app) -> None:
    from tenants.db import db

    with app.app_context():
        db.engine.dispose()


def invitation_path(app, company, address: str, outbox, run_jobs) -> str:
    """The path of a real invitation link to `company` for `address` (sent by the API, mailed by a job)."""
    from .conftest import api_token
    from .test_people import invitation_link

    response = client_for(app, company).post("/api/v1/invitations", json={"email": address},
                                             headers={"Authorization": f"Bearer {api_token(app, company)}"})
    assert response.status_code == 201, response.get_json()
    run_jobs()
    return path_of(invitation_link(outbox, address))


def accept_invitation_form(client, path: str, password: str):
    token = csrf_token(client.get(path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, "password": password})


def api_token_attempt(client, email: str, password: str):
    return client.post("/api/v1/tokens", json={"email": email, "password": password})


def test_every_password_route_spends_one_budget_per_address(app, tuned_app, make_tenant, outbox, run_jobs):
    limited = tuned_app(SIGNIN_RATE_LIMIT="5 per minute")
    a, b, c = make_tenant(name="Acme"), make_tenant(name="Globex"), make_tenant(name="Initech")
    invite_path = invitation_path(app, a, c.owner_email, outbox, run_jobs)
    ip = fresh_ip()

    def at(host):
        client = client_for(limited, host)
        client.environ_base["REMOTE_ADDR"] = ip
        return client

    def five_guesses():
        """One wrong password on each route that checks one, each at a different account."""
        yield sign_in_form(at(a.host), a.owner_email, "wrong password!"), 401
        yield api_token_attempt(at(b.host), b.owner_email, "wrong password!"), 401
        yield post_signup(at(SERVER_NAME), **signup_data(email=c.owner_email, password="wrong password!")), 422
        yield at(SERVER_NAME).post("/api/v1/signup", json={
            "company_name": "X", "slug": unique_slug("pw"), "email": a.owner_email, "password": "wrong password!"}), 409
        yield accept_invitation_form(at(a.host), invite_path, "wrong password!"), 200

    for response, status in five_guesses():
        assert response.status_code == status, page_text(response)[:300]

    # The address's budget is spent: every one of those routes now refuses, readably…
    refused = sign_in_form(at(a.host), a.owner_email, a.password)
    assert refused.status_code == 429 and "Too many attempts" in page_text(refused)
    assert not is_signed_in(at(a.host))
    token = api_token_attempt(at(b.host), b.owner_email, b.password)
    assert token.status_code == 429
    assert token.get_json()["error"] == "too_many_requests" and "Too many" in token.get_json()["message"]
    data = signup_data(email=c.owner_email, password=c.password)
    assert post_signup(at(SERVER_NAME), **data).status_code == 429
    assert tenant_row(limited, data["slug"]) is None
    api_signup = at(SERVER_NAME).post("/api/v1/signup", json={
        "company_name": "X", "slug": unique_slug("pw"), "email": a.owner_email, "password": a.password})
    assert api_signup.status_code == 429 and api_signup.get_json()["error"] == "too_many_requests"
    accepted = accept_invitation_form(at(a.host), invite_path, c.password)
    assert accepted.status_code == 429 and "Too many attempts" in page_text(accepted)
    assert not sql(app, "SELECT 1 FROM public.memberships WHERE tenant_id = :t AND user_id = :u",
                   t=a.id, u=c.owner_id)
    # …while pages still open, and another address has its own budget.
    assert at(a.host).get("/signin").status_code == 200
    assert at(a.host).get(invite_path).status_code == 200
    elsewhere = from_fresh_address(limited, a.host)
    assert sign_in_form(elsewhere, a.owner_email, a.password).status_code == 302


def test_guesses_at_one_account_from_many_addresses_are_capped(tuned_app, make_tenant):
    limited = tuned_app(SIGNIN_ACCOUNT_RATE_LIMIT="3 per minute")
    company, other = make_tenant(), make_tenant()
    # However the email is spelled, it is the same account.
    for spelling in (company.owner_email, f"  {company.owner_email.upper()} ", company.owner_email.title()):
        client = from_fresh_address(limited, company.host)
        assert sign_in_form(client, spelling, "wrong password!").status_code == 401

    client = from_fresh_address(limited, company.host)
    refused = sign_in_form(client, company.owner_email, company.password)
    assert refused.status_code == 429 and "Too many attempts" in page_text(refused)
    assert not is_signed_in(client)
    assert api_token_attempt(from_fresh_address(limited, company.host), company.owner_email,
                             company.password).status_code == 429
    data = signup_data(email=company.owner_email)
    assert post_signup(from_fresh_address(limited, SERVER_NAME), **data).status_code == 429
    assert tenant_row(limited, data["slug"]) is None
    # Only that account: the same address signs in to another one.
    same_address = client_for(limited, other.host)
    same_address.environ_base["REMOTE_ADDR"] = client.environ_base["REMOTE_ADDR"]
    assert sign_in_form(same_address, other.owner_email, other.password).status_code == 302


def test_the_default_budgets_work_as_written(tuned_app, make_tenant, tmp_path):
    from saas.config import load_config

    defaults = load_config(str(tmp_path))
    limited = tuned_app(SIGNIN_RATE_LIMIT=defaults["SIGNIN_RATE_LIMIT"],
                        SIGNIN_ACCOUNT_RATE_LIMIT=defaults["SIGNIN_ACCOUNT_RATE_LIMIT"])
    company = make_tenant()
    client = from_fresh_address(limited, company.host)
    for _ in range(10):  # "10 per minute;100 per hour" from one address
        assert api_token_attempt(client, company.owner_email, "wrong password!").status_code == 401
    assert api_token_attempt(client, company.owner_email, company.password).status_code == 429
    for _ in range(10):  # "20 per hour" for one account, from anywhere: 10 spent above
        assert api_token_attempt(from_fresh_address(limited, company.host), company.owner_email,
                                 "wrong password!").status_code == 401
    assert api_token_attempt(from_fresh_address(limited, company.host), company.owner_email,
                             company.password).status_code == 429


def test_the_account_budget_reads_the_email_the_way_the_form_does(tuned_app, make_tenant):
    """The web form also takes a JSON body, where a list means several values and the first
    counts: the account budget must see that same first email, or a list would slip past it."""
    limited = tuned_app(SIGNIN_ACCOUNT_RATE_LIMIT="2 per minute")
    company = make_tenant()

    def json_sign_in(email, password):
        client = from_fresh_address(limited, company.host)
        token = csrf_token(client.get("/signin").get_data(as_text=True))
        return client.post("/signin", json={"email": email, "password": password}, headers={"X-CSRFToken": token})

    assert json_sign_in([company.owner_email, "someone@example.com"], "wrong password!").status_code == 401
    assert json_sign_in(company.owner_email.upper(), "wrong password!").status_code == 401
    assert json_sign_in([company.owner_email], company.password).status_code == 429
    assert sign_in_form(from_fresh_address(limited, company.host), company.owner_email,
                        company.password).status_code == 429


def test_accepting_an_invitation_spends_the_invited_accounts_budget(app, tuned_app, make_tenant, outbox, run_jobs):
    limited = tuned_app(SIGNIN_ACCOUNT_RATE_LIMIT="3 per minute")
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    path = invitation_path(app, a, b.owner_email, outbox, run_jobs)
    for _ in range(2):
        assert sign_in_form(from_fresh_address(limited, b.host), b.owner_email, "wrong password!").status_code == 401
    wrong = accept_invitation_form(from_fresh_address(limited, a.host), path, "wrong password!")
    assert wrong.status_code == 200 and f"Wrong password for {b.owner_email}." in messages(wrong)

    client = from_fresh_address(limited, a.host)
    refused = accept_invitation_form(client, path, b.password)
    assert refused.status_code == 429 and "Too many attempts" in page_text(refused)
    assert not sql(app, "SELECT 1 FROM public.memberships WHERE tenant_id = :t AND user_id = :u",
                   t=a.id, u=b.owner_id)
    refused_sign_in = sign_in_form(from_fresh_address(limited, b.host), b.owner_email, b.password)
    assert refused_sign_in.status_code == 429


def test_sign_ups_share_one_budget_for_web_and_api(limited_app):
    client = from_fresh_address(limited_app, SERVER_NAME)
    assert post_signup(client, **signup_data(slug="www")).status_code == 422
    assert client.post("/api/v1/signup", json={"company_name": "X", "slug": "www", "email": "x@example.com",
                                                "password": PASSWORD}).status_code == 422
    data = signup_data()
    assert post_signup(client, **data).status_code == 429
    assert client.post("/api/v1/signup", json={**data, "slug": unique_slug()}).status_code == 429
    assert tenant_row(limited_app, data["slug"]) is None


def test_an_ipv6_client_is_counted_by_its_64_network(limited_app, make_tenant):
    company = make_tenant()
    n = uuid.uuid4().int
    network = f"2001:db8:{n % 0xffff:x}:{(n >> 16) % 0xffff:x}"

    def from_ipv6(host_part: str):
        client = client_for(limited_app, company.host)
        client.environ_base["REMOTE_ADDR"] = f"{network}::{host_part}"
        return client

    for host_part in ("1", "2", "abcd:1"):
        assert sign_in_form(from_ipv6(host_part), company.owner_email, "wrong password!").status_code == 401
    assert sign_in_form(from_ipv6("ffff:2"), company.owner_email, company.password).status_code == 429
    other = client_for(limited_app, company.host)
    other.environ_base["REMOTE_ADDR"] = f"2001:db8:{(n >> 32) % 0xffff:x}:{(n >> 48) % 0xffff:x}::1"
    assert sign_in_form(other, company.owner_email, company.password).status_code == 302


# --- behind a reverse proxy ----------------------------------------------------------------

def test_behind_a_proxy_each_forwarded_address_has_its_own_budget(tuned_app, make_tenant):
    proxied = tuned_app(PROXY_FIX=1, SIGNIN_RATE_LIMIT="2 per minute")
    company = make_tenant()
    proxy = fresh_ip()  # every request reaches the app from the proxy's address
    first, second = fresh_ip(), fresh_ip()

    def via_proxy(forwarded_for: str):
        return forwarded_client(proxied, company.host, proxy, forwarded_for)

    for _ in range(2):
        assert sign_in_form(via_proxy(first), company.owner_email, "wrong password!").status_code == 401
    assert sign_in_form(via_proxy(first), company.owner_email, company.password).status_code == 429
    # Only the hop the proxy added is trusted: a client's own X-Forwarded-For entry changes nothing.
    assert sign_in_form(via_proxy(f"{second}, {first}"), company.owner_email, company.password).status_code == 429
    assert sign_in_form(via_proxy(second), company.owner_email, company.password).status_code == 302


def test_without_proxy_fix_x_forwarded_for_is_ignored(tuned_app, make_tenant):
    direct = tuned_app(SIGNIN_RATE_LIMIT="2 per minute")
    assert direct.config["PROXY_FIX"] == 0  # the default
    company = make_tenant()
    address = fresh_ip()

    def claiming(forwarded_for: str):
        return forwarded_client(direct, company.host, address, forwarded_for)

    for _ in range(2):
        assert sign_in_form(claiming(fresh_ip()), company.owner_email, "wrong password!").status_code == 401
    assert sign_in_form(claiming(fresh_ip()), company.owner_email, company.password).status_code == 429


def test_proxy_fix_hops_come_from_the_environment(monkeypatch, tmp_path):
    from saas.config import load_config

    assert load_config(str(tmp_path))["PROXY_FIX"] == 0
    monkeypatch.setenv("PROXY_FIX_HOPS", "2")
    assert load_config(str(tmp_path))["PROXY_FIX"] == 2


# --- cookies over https ----------------------------------------------------------------------

def session_cookie_headers(response) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]


def test_over_https_the_session_cookie_is_secure(monkeypatch, make_app, make_tenant):
    monkeypatch.setenv("URL_SCHEME", "https")
    secure_app = make_app()
    try:
        assert secure_app.config["PREFERRED_URL_SCHEME"] == "https"
        assert secure_app.config["SESSION_COOKIE_SECURE"] and secure_app.config["REMEMBER_COOKIE_SECURE"]
        company = make_tenant()
        client = from_fresh_address(secure_app, company.host)
        base = f"https://{company.host}"
        page = client.get("/signin", base_url=base)
        response = client.post("/signin", base_url=base, headers={"Referer": f"{base}/signin"}, data={
            "csrf_token": csrf_token(page.get_data(as_text=True)), "email": company.owner_email,
            "password": company.password})
        assert response.status_code == 302, page_text(response)[:300]
        cookies = session_cookie_headers(response)
        assert cookies and all("; Secure" in c and "; HttpOnly" in c for c in cookies), cookies
        assert client.get("/", base_url=base).status_code == 200  # signed in, over https
    finally:
        dispose(secure_app)


def test_over_http_the_session_cookie_is_not_marked_secure(app, make_tenant):
    assert app.config["PREFERRED_URL_SCHEME"] == "http" and not app.config["SESSION_COOKIE_SECURE"]
    company = make_tenant()
    client = client_for(app, company)
    token = csrf_token(client.get("/signin").get_data(as_text=True))
    response = client.post("/signin", data={"csrf_token": token, "email": company.owner_email,
                                            "password": company.password})
    assert response.status_code == 302
    cookies = session_cookie_headers(response)
    assert cookies and not any("Secure" in c for c in cookies)


# --- a Redis that stops answering --------------------------------------------------------------

HUNG_REDIS_PROBE = r"""
import json, sys, time
from saas import create_app

config = json.loads(sys.argv[1])
app = create_app(config, instance_path=sys.argv[2])
client = app.test_client()
answers = []
for password in ("wrong password!", "wrong password!"):
    started = time.monotonic()
    response = client.post("/api/v1/tokens", base_url="http://" + sys.argv[3],
                           json={"email": sys.argv[4], "password": password})
    answers.append([response.status_code, round(time.monotonic() - started, 2)])
print(json.dumps(answers))
"""


def test_a_redis_that_stops_answering_does_not_hang_sign_in(database_url, redis_url, storage_url, tmp_path,
                                                           make_tenant):
    """The limiter's Redis accepts connections and then never answers. Each attempt still gets its
    answer within about the socket timeout, and the limit keeps counting (in memory) meanwhile.
    A process of its own: the limiter is one object per process, and this one must not poison it."""
    import json
    import socket
    import subprocess
    import sys
    import threading
    from pathlib import Path

    from .conftest import app_config

    company = make_tenant()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held = []

    def swallow():
        while True:
            try:
                held.append(silent.accept()[0])
            except OSError:
                return
    threading.Thread(target=swallow, daemon=True).start()
    try:
        config = app_config(database_url, redis_url, storage_url, tmp_path, SIGNIN_RATE_LIMIT="1 per minute",
                            RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        probe = subprocess.run(
            [sys.executable, "-c", HUNG_REDIS_PROBE, json.dumps(config), str(tmp_path), company.host,
             company.owner_email],
            check=False, capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    finally:
        silent.close()
        for connection in held:
            connection.close()
    assert probe.returncode == 0, probe.stderr[-2000:]
    (first, first_seconds), (second, second_seconds) = json.loads(probe.stdout.strip().splitlines()[-1])
    assert held, "the probe never reached the silent Redis"
    assert first == 401 and second == 429, probe.stdout
    assert first_seconds < 3 and second_seconds < 3, probe.stdout

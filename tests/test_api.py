"""REST API v1: sign-up, tokens, bearer authentication bound to one company's host, JSON errors.

Every request goes through the Flask test client to a real host (`<slug>.<SERVER_NAME>`, or the
bare SERVER_NAME for the public site) against the real PostgreSQL and Redis.
"""
import uuid

import pytest

from .conftest import PASSWORD, SERVER_NAME, api_token, client_for, from_fresh_address, sign_in, unique_slug
from .test_auth import fresh_ip, sql, tenant_row, tenant_schemas, user_count


def public(app):
    return client_for(app, SERVER_NAME)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def signup_body(**overrides) -> dict:
    slug = unique_slug("api")
    return {"company_name": "Globex Corp", "slug": slug, "email": f"hank-{uuid.uuid4().hex[:10]}@example.com",
            "password": PASSWORD, **overrides}


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("message"), str) and body["message"]
    if code:
        assert body["error"] == code, body
    return body


# --- sign-up -------------------------------------------------------------------------------

def test_api_signup_creates_the_company_and_returns_a_working_token(app):
    body = signup_body()
    response = public(app).post("/api/v1/signup", json=body)

    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert set(data) == {"tenant", "token"}
    assert set(data["tenant"]) == {"id", "slug"} and data["tenant"]["slug"] == body["slug"]
    row = tenant_row(app, body["slug"])
    assert row.id == data["tenant"]["id"] and row.name == "Globex Corp"
    assert f"t_{row.id}" in tenant_schemas(app)

    me = client_for(app, f"{body['slug']}.{SERVER_NAME}").get("/api/v1/me", headers=bearer(data["token"]))
    assert me.status_code == 200
    assert me.get_json()["user"]["email"] == body["email"]
    assert me.get_json()["tenant"]["slug"] == body["slug"]
    assert me.get_json()["role"] == "owner"
    assert "password" not in me.get_data(as_text=True)


def test_api_signup_only_on_the_public_site(app, make_tenant):
    company = make_tenant()
    body = signup_body()
    assert_json_error(client_for(app, company).post("/api/v1/signup", json=body), 404, "not_found")
    assert tenant_row(app, body["slug"]) is None


def test_api_signup_missing_fields_are_named(app):
    response = public(app).post("/api/v1/signup", json={"company_name": "No slug"})
    body = assert_json_error(response, 422, "invalid")
    assert set(body["fields"]) == {"slug", "email", "password"}
    for messages in body["fields"].values():
        assert messages and all(isinstance(m, str) and m for m in messages)


@pytest.mark.parametrize("slug,fragment", [
    ("www", "reserved"), ("api", "reserved"), ("admin", "reserved"), ("app", "reserved"),
    ("my company", "Latin"), ("-acme", "Latin"), ("acme.corp", "Latin"), ("компания", "Latin"),
    ("a" * 41, "40"), ("", ""),
])
def test_api_signup_refuses_bad_slugs(app, slug, fragment):
    before = tenant_schemas(app)
    body = signup_body(slug=slug)
    response = public(app).post("/api/v1/signup", json=body)
    error = assert_json_error(response, 422)
    assert "slug" in error["fields"]
    assert fragment in " ".join(error["fields"]["slug"])
    assert tenant_schemas(app) == before
    assert user_count(app, body["email"]) == 0


@pytest.mark.parametrize("field,value", [("email", "not-an-email"), ("password", "short"), ("company_name", "  ")])
def test_api_signup_refuses_bad_details(app, field, value):
    body = signup_body(**{field: value})
    error = assert_json_error(public(app).post("/api/v1/signup", json=body), 422)
    assert field in error["fields"]
    assert tenant_row(app, body["slug"]) is None


def test_api_signup_taken_slug_is_409(app, make_tenant):
    taken = make_tenant(name="Original")
    body = signup_body(slug=taken.slug)
    error = assert_json_error(public(app).post("/api/v1/signup", json=body), 409, "slug_taken")
    assert error["fields"] == {"slug": [error["message"]]}
    assert sql(app, "SELECT name FROM public.tenants WHERE slug = :s", s=taken.slug)[0].name == "Original"
    assert user_count(app, body["email"]) == 0


def test_api_signup_existing_email_needs_its_password(app, make_tenant):
    existing = make_tenant()
    wrong = signup_body(email=existing.owner_email, password="not the password")
    assert_json_error(public(app).post("/api/v1/signup", json=wrong), 409, "email_taken")
    assert tenant_row(app, wrong["slug"]) is None

    right = signup_body(email=existing.owner_email, password=existing.password)
    response = public(app).post("/api/v1/signup", json=right)
    assert response.status_code == 201
    assert len(sql(app, "SELECT 1 FROM public.memberships WHERE user_id = :u", u=existing.owner_id)) == 2


def test_api_rejects_bodies_that_are_not_json_objects(app, make_tenant):
    company = make_tenant()
    assert_json_error(public(app).post("/api/v1/signup", data="company_name=x", content_type="text/plain"), 400)
    assert_json_error(public(app).post("/api/v1/signup", data="{not json", content_type="application/json"), 400)
    assert_json_error(public(app).post("/api/v1/signup", json=["a", "list"]), 400)
    assert_json_error(client_for(app, company).post("/api/v1/tokens", data="x"), 400)


def test_api_unknown_paths_and_methods_answer_json(app, make_tenant):
    company = make_tenant()
    assert_json_error(client_for(app, company).get("/api/v1/nothing-here"), 404)
    assert_json_error(client_for(app, company).delete("/api/v1/me"), 405)


# --- tokens --------------------------------------------------------------------------------

def test_token_for_the_company_host(app, make_tenant):
    company = make_tenant()
    response = client_for(app, company).post("/api/v1/tokens", json={
        "email": company.owner_email.upper(), "password": company.password})
    assert response.status_code == 201
    token = response.get_json()["token"]
    me = client_for(app, company).get("/api/v1/me", headers=bearer(token)).get_json()
    assert me["user"]["id"] == company.owner_id and me["tenant"]["id"] == company.id

    stored = sql(app, "SELECT token_hash FROM public.api_tokens WHERE user_id = :u", u=company.owner_id)
    assert stored and all(token not in row.token_hash for row in stored)  # only a digest is kept


def test_token_refusals_are_401_and_alike(app, make_tenant):
    a, b = make_tenant(), make_tenant()
    client = client_for(app, a)
    wrong = assert_json_error(client.post("/api/v1/tokens", json={"email": a.owner_email, "password": "nope nope"}),
                              401, "invalid_credentials")
    unknown = assert_json_error(client.post("/api/v1/tokens", json={"email": "ghost@example.com", "password": PASSWORD}),
                                401, "invalid_credentials")
    not_member = assert_json_error(client.post("/api/v1/tokens", json={"email": b.owner_email, "password": PASSWORD}),
                                   401, "invalid_credentials")
    assert wrong == unknown == not_member
    missing = assert_json_error(client.post("/api/v1/tokens", json={"email": a.owner_email}), 422)
    assert set(missing["fields"]) == {"password"}
    assert_json_error(public(app).post("/api/v1/tokens", json={"email": a.owner_email, "password": PASSWORD}), 404)


def test_a_token_works_only_on_its_own_company_host(app, make_tenant):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    token = api_token(app, a)
    assert client_for(app, a).get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert_json_error(client_for(app, b).get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")
    assert_json_error(client_for(app, b).get("/api/v1/people", headers=bearer(token)), 401)
    assert_json_error(public(app).get("/api/v1/me", headers=bearer(token)), 401)


def test_a_token_of_a_person_in_both_companies_still_works_only_where_issued(app, make_tenant):
    a = make_tenant()
    b = make_tenant(owner_email=a.owner_email)
    token = api_token(app, a)
    assert_json_error(client_for(app, b).get("/api/v1/me", headers=bearer(token)), 401)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Bearer dd_not-a-real-token", "Basic dXNlcjpwYXNz",
                                    "Token abc"])
def test_missing_or_bad_authorization_is_401(app, make_tenant, header):
    company = make_tenant()
    headers = {"Authorization": header} if header is not None else {}
    assert_json_error(client_for(app, company).get("/api/v1/me", headers=headers), 401)


def test_the_web_session_cookie_does_not_authenticate_the_api(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    assert client.get("/").status_code == 200  # signed in on the web…
    assert_json_error(client.get("/api/v1/me"), 401)  # …but the API wants a token
    assert_json_error(client.get("/api/v1/people"), 401)
    response = client.post("/api/v1/invitations", json={"email": "x@example.com"})
    assert_json_error(response, 401)
    assert not sql(app, "SELECT 1 FROM public.invitations WHERE tenant_id = :t", t=company.id)


def test_people_list_shows_the_company_only(app, make_tenant):
    a, b = make_tenant(), make_tenant()
    people = client_for(app, a).get("/api/v1/people", headers=bearer(api_token(app, a))).get_json()
    assert [(p["user"]["email"], p["role"], p["active"]) for p in people] == [(a.owner_email, "owner", True)]
    assert b.owner_email not in str(people)
    assert all("password" not in key for p in people for key in p["user"])


# --- rate limits ---------------------------------------------------------------------------

def test_api_token_requests_are_rate_limited(limited_app, make_tenant):
    company = make_tenant()
    client = from_fresh_address(limited_app, company.host)
    for _ in range(3):
        assert_json_error(client.post("/api/v1/tokens", json={"email": company.owner_email, "password": "wrong wrong"}),
                          401)
    error = assert_json_error(client.post("/api/v1/tokens", json={"email": company.owner_email,
                                                                   "password": company.password}), 429)
    assert "Too many" in error["message"]


def test_api_signup_is_rate_limited(limited_app):
    client = from_fresh_address(limited_app, SERVER_NAME)
    for _ in range(2):
        assert_json_error(client.post("/api/v1/signup", json=signup_body(slug="www")), 422)
    body = signup_body()
    error = assert_json_error(client.post("/api/v1/signup", json=body), 429)
    assert "Too many" in error["message"]
    assert tenant_row(limited_app, body["slug"]) is None


def test_api_token_guesses_at_one_account_from_many_addresses_are_capped(tuned_app, make_tenant):
    limited = tuned_app(SIGNIN_ACCOUNT_RATE_LIMIT="3 per minute")
    company, other = make_tenant(), make_tenant()
    for email in (company.owner_email, company.owner_email.upper(), f" {company.owner_email} "):
        client = from_fresh_address(limited, company.host)
        assert_json_error(client.post("/api/v1/tokens", json={"email": email, "password": "wrong wrong"}), 401)

    client = from_fresh_address(limited, company.host)
    error = assert_json_error(client.post("/api/v1/tokens", json={"email": company.owner_email,
                                                                   "password": company.password}), 429,
                              "too_many_requests")
    assert "Too many" in error["message"]
    # Adding a company to that account by API sign-up checks the same password: refused too.
    body = signup_body(email=company.owner_email, password=company.password)
    assert_json_error(from_fresh_address(limited, SERVER_NAME).post("/api/v1/signup", json=body), 429,
                      "too_many_requests")
    assert tenant_row(limited, body["slug"]) is None
    # Other accounts are untouched, from the very same address.
    same_address = client_for(limited, other.host)
    same_address.environ_base["REMOTE_ADDR"] = client.environ_base["REMOTE_ADDR"]
    assert same_address.post("/api/v1/tokens", json={"email": other.owner_email,
                                                     "password": other.password}).status_code == 201


def test_api_tokens_and_api_signup_spend_one_budget_per_address(tuned_app, make_tenant):
    limited = tuned_app(SIGNIN_RATE_LIMIT="2 per minute")
    company = make_tenant()
    address = fresh_ip()
    tokens, public_site = client_for(limited, company), client_for(limited, SERVER_NAME)
    for client in (tokens, public_site):
        client.environ_base["REMOTE_ADDR"] = address

    assert_json_error(tokens.post("/api/v1/tokens", json={"email": company.owner_email, "password": "wrong wrong"}),
                      401)
    assert_json_error(public_site.post("/api/v1/signup", json=signup_body(email=company.owner_email,
                                                                          password="not the password")), 409)
    error = assert_json_error(tokens.post("/api/v1/tokens", json={"email": company.owner_email,
                                                                   "password": company.password}), 429,
                              "too_many_requests")
    assert "Too many" in error["message"]
    russian = tokens.post("/api/v1/tokens", headers={"Accept-Language": "ru"},
                          json={"email": company.owner_email, "password": company.password})
    assert russian.status_code == 429 and russian.get_json()["message"] != error["message"]


# --- OpenAPI -------------------------------------------------------------------------------

def test_openapi_document_is_valid_and_lists_the_api(app, make_tenant):
    from openapi_spec_validator import validate

    company = make_tenant()
    for client in (public(app), client_for(app, company)):
        response = client.get("/api/v1/openapi.json")
        assert response.status_code == 200 and response.mimetype == "application/json"
        document = response.get_json()
        validate(document)
        assert document["openapi"].startswith("3.")
        paths = document["paths"]
        for path, method in [("/api/v1/signup", "post"), ("/api/v1/tokens", "post"), ("/api/v1/me", "get"),
                             ("/api/v1/people", "get"), ("/api/v1/invitations", "post")]:
            assert method in paths.get(path, {}), (path, method)
        assert "/api/v1/openapi.json" not in paths
        assert document["paths"]["/api/v1/me"]["get"]["security"] == [{"bearer": []}]
        schemas = document["components"]["schemas"]
        assert {"company_name", "slug", "email", "password"} <= set(schemas["SignupIn"]["properties"])
        assert set(schemas["SignupIn"]["required"]) >= {"company_name", "slug", "email", "password"}


def test_json_with_a_lone_surrogate_is_a_400_not_a_crash(app, make_tenant):
    company = make_tenant()
    response = client_for(app, company).post(
        "/api/v1/tokens", data='{"email": "\\ud800@example.com", "password": "x"}', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"

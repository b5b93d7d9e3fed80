"""The billing API with the offline provider: GET /api/v1/billing and POST /api/v1/billing/plan,
who may call them, a token from another company, and the OpenAPI document that describes them."""
import os

from .conftest import api_token, client_for
from .crm_helpers import add_person
from .test_billing_pages import bearer, make_deal

MB = 1024 * 1024
SHAPE = {"plan", "limits_plan", "seats", "seats_paid", "limit_bytes", "used_bytes", "over_limit_bytes", "status",
         "grace_until", "period_end", "cancel_at_period_end", "next_invoice", "provider"}


def upload_through_the_api(client, token: str, deal_id: int, size: int) -> None:
    response = client.post(f"/api/v1/deals/{deal_id}/documents?filename=drawing.bin", data=os.urandom(size),
                           content_type="application/octet-stream", headers=bearer(token))
    assert response.status_code == 201, response.get_json()


def test_the_billing_standing_has_the_documented_shape(app, make_tenant):
    company = make_tenant()
    add_person(app, company, "member")
    token = api_token(app, company)
    client = client_for(app, company)
    upload_through_the_api(client, token, make_deal(app, company), 12345)

    response = client.get("/api/v1/billing", headers=bearer(token))
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == SHAPE
    assert body == {"plan": "free", "limits_plan": "free", "seats": 2, "seats_paid": 1, "limit_bytes": 200 * MB,
                    "used_bytes": 12345, "over_limit_bytes": 0, "status": "active", "grace_until": None,
                    "period_end": None, "cancel_at_period_end": False, "next_invoice": None, "provider": "offline"}


def test_offline_a_switch_applies_at_once_and_unlimited_is_null(app, make_tenant):
    company = make_tenant()
    add_person(app, company, "admin")
    token = api_token(app, company)
    client = client_for(app, company)

    response = client.post("/api/v1/billing/plan", json={"plan": "standard"}, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["applied"], body["url"], body["kind"]) == (True, None, None)
    assert body["billing"]["plan"] == "standard" and body["billing"]["limit_bytes"] == 2 * 500 * MB
    assert body["billing"]["seats"] == body["billing"]["seats_paid"] == 2  # offline, seats follow people at once

    response = client.post("/api/v1/billing/plan", json={"plan": "extended"}, headers=bearer(token))
    assert response.get_json()["billing"]["plan"] == "extended"
    now = client.get("/api/v1/billing", headers=bearer(token)).get_json()
    assert now["plan"] == "extended" and "limit_bytes" in now and now["limit_bytes"] is None

    response = client.post("/api/v1/billing/plan", json={"plan": "free"}, headers=bearer(token))
    assert response.status_code == 200 and response.get_json()["billing"]["limit_bytes"] == 200 * MB


def test_an_unknown_or_missing_plan_is_422_and_changes_nothing(app, make_tenant):
    company = make_tenant()
    token = api_token(app, company)
    client = client_for(app, company)
    for body in ({"plan": "platinum"}, {}, {"plan": None}):
        response = client.post("/api/v1/billing/plan", json=body, headers=bearer(token))
        assert response.status_code == 422, (body, response.get_json())
        assert response.get_json()["error"] == "invalid" and "plan" in response.get_json()["fields"]
    assert client.get("/api/v1/billing", headers=bearer(token)).get_json()["plan"] == "free"


def test_administrators_read_but_only_the_owner_switches_and_members_get_403(app, make_tenant):
    company = make_tenant()
    admin, member = add_person(app, company, "admin"), add_person(app, company, "member")
    client = client_for(app, company)
    admin_token = api_token(app, company, admin.email, admin.password)
    member_token = api_token(app, company, member.email, member.password)

    assert client.get("/api/v1/billing", headers=bearer(admin_token)).status_code == 200
    refused = client.post("/api/v1/billing/plan", json={"plan": "extended"}, headers=bearer(admin_token))
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert refused.get_json()["message"] == "Only the company's owner can change the plan."
    for call in (lambda: client.get("/api/v1/billing", headers=bearer(member_token)),
                 lambda: client.post("/api/v1/billing/plan", json={"plan": "extended"},
                                     headers=bearer(member_token))):
        assert call().status_code == 403
    assert client.get("/api/v1/billing").status_code == 401
    assert client.get("/api/v1/billing", headers=bearer(admin_token)).get_json()["plan"] == "free"


def test_a_token_of_another_company_is_401_for_reading_and_switching(app, make_tenant):
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    acme_token, globex_token = api_token(app, acme), api_token(app, globex)
    on_globex = client_for(app, globex)
    assert on_globex.get("/api/v1/billing", headers=bearer(acme_token)).status_code == 401
    assert on_globex.post("/api/v1/billing/plan", json={"plan": "extended"},
                          headers=bearer(acme_token)).status_code == 401
    assert on_globex.get("/api/v1/billing", headers=bearer(globex_token)).get_json()["plan"] == "free"


def test_the_openapi_document_describes_both_operations(app, make_tenant):
    from openapi_spec_validator import validate

    document = client_for(app, make_tenant()).get("/api/v1/openapi.json").get_json()
    validate(document)
    read, switch = document["paths"]["/api/v1/billing"]["get"], document["paths"]["/api/v1/billing/plan"]["post"]
    for operation in (read, switch):
        assert operation["security"] == [{"bearer": []}] and "Billing" in operation["tags"]
    assert {"200", "401", "403"} <= set(read["responses"])
    assert {"200", "401", "403", "409", "422", "502"} <= set(switch["responses"])
    assert read["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/BillingOut")
    assert switch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PlanIn")
    schemas = document["components"]["schemas"]
    billing = schemas["BillingOut"]["properties"]
    assert {"plan", "seats", "limit_bytes", "used_bytes", "status", "period_end"} <= set(billing)
    assert billing["limit_bytes"].get("nullable") is True or "null" in billing["limit_bytes"].get("type", [])
    assert schemas["PlanIn"]["required"] == ["plan"]
    assert set(schemas["PlanIn"]["properties"]["plan"]["enum"]) == {"free", "standard", "extended"}
    assert {"applied", "url", "kind", "billing"} <= set(schemas["PlanChangeOut"]["properties"])

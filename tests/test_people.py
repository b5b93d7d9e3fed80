"""Invitations, roles, deactivation, the company switcher, and tenant isolation on each of them.

Invitations go the whole way: the web form or the API queues a mail job, `run_jobs()` runs it
in a real RQ worker, the message lands in the outbox, and its link is followed on the company's
host. Other people are added straight through the models (users and memberships) so each test
only spends argon2 time where it matters.
"""
import email
import email.policy
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from .conftest import PASSWORD, Company, api_token, client_for, csrf_token, sign_in
from .test_auth import copy_cookie, is_signed_in, messages, page_text, path_of, sql


@dataclass
class Person:
    email: str
    user_id: int
    membership_id: int
    password: str = PASSWORD


def add_person(app, company: Company, role: str = "member", email_address: str | None = None,
               name: str = "Ivan Petrov", password: str = PASSWORD) -> Person:
    """Put a person into `company` with `role` (an existing account with this email is reused)."""
    from sqlalchemy import select

    from saas.auth.models import Membership, User
    from saas.auth.passwords import hash_password
    from tenants.db import db

    email_address = email_address or f"person-{uuid.uuid4().hex[:10]}@example.com"
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email_address))
        if user is None:
            user = User(email=email_address, name=name, password_hash=hash_password(password))
            db.session.add(user)
        membership = Membership(user=user, tenant_id=company.id, role=role)
        db.session.add(membership)
        db.session.commit()
        return Person(email_address, user.id, membership.id, password)


def owner_membership_id(app, company: Company) -> int:
    return sql(app, "SELECT id FROM public.memberships WHERE tenant_id = :t AND user_id = :u",
               t=company.id, u=company.owner_id)[0].id


def membership(app, membership_id: int):
    return sql(app, "SELECT tenant_id, role, active FROM public.memberships WHERE id = :id", id=membership_id)[0]


def memberships_of_tenant(app, company: Company):
    return sorted((r.user_id, r.role, r.active) for r in sql(
        app, "SELECT user_id, role, active FROM public.memberships WHERE tenant_id = :t", t=company.id))


def invitations_of(app, company: Company):
    return sql(app, "SELECT email, role, accepted_at FROM public.invitations WHERE tenant_id = :t ORDER BY id",
               t=company.id)


def sign_in_person(app, company: Company, person: Person):
    return sign_in(app, company, email=person.email, password=person.password)


def token_of(client) -> str:
    return csrf_token(client.get("/people").get_data(as_text=True))


def web_invite(client, email_address: str, role: str = "member"):
    return client.post("/people/invite", data={"csrf_token": token_of(client), "email": email_address, "role": role})


def change_role(client, membership_id: int, role: str):
    prefix = f"m{membership_id}"  # the people page prefixes each row's role form
    return client.post(f"/people/{membership_id}/role",
                       data={f"{prefix}-csrf_token": token_of(client), f"{prefix}-role": role})


def set_access(client, membership_id: int, action: str):
    return client.post(f"/people/{membership_id}/{action}", data={"csrf_token": token_of(client)})


def mail_to(outbox, address: str) -> list:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            found.append(message)
    return found


def invitation_link(outbox, address: str) -> str:
    sent = mail_to(outbox, address)
    assert len(sent) == 1, f"{len(sent)} messages to {address}"
    links = re.findall(r"https?://\S+/invite/\S+", sent[0].get_content())
    assert len(links) == 1
    return links[0]


def follow(app, link: str):
    """A fresh browser on the link's host, and the link's path."""
    return client_for(app, urlsplit(link).netloc), path_of(link)


def accept(client, path: str, **fields):
    token = csrf_token(client.get(path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **fields})


def invite_someone(app, company: Company, outbox, run_jobs) -> tuple[str, str]:
    """The owner invites a fresh address and the mail job runs: (address, link)."""
    address = new_email()
    web_invite(sign_in(app, company), address)
    run_jobs()
    return address, invitation_link(outbox, address)


def new_email() -> str:
    return f"new-{uuid.uuid4().hex[:10]}@example.com"


# --- invitations ---------------------------------------------------------------------------

def test_owner_invites_by_web_form_and_a_new_person_joins(app, make_tenant, outbox, run_jobs):
    company = make_tenant(name="Romashka")
    owner = sign_in(app, company)
    address = new_email()

    response = web_invite(owner, address.upper())
    assert response.status_code == 302 and response.headers["Location"] == "/people"
    people_page = page_text(owner.get("/people"))
    assert f"Invitation sent to {address}." in people_page and address in people_page
    assert [(i.email, i.role, i.accepted_at) for i in invitations_of(app, company)] == [(address, "member", None)]

    assert mail_to(outbox, address) == []  # sent by the worker, after the commit
    run_jobs()
    sent = mail_to(outbox, address)
    assert len(sent) == 1 and "Romashka" in sent[0]["Subject"]
    link = invitation_link(outbox, address)
    assert urlsplit(link).netloc == company.host

    newcomer, path = follow(app, link)
    invite_page = newcomer.get(path)
    assert invite_page.status_code == 200 and "Join Romashka" in page_text(invite_page)
    joined = accept(newcomer, path, name="Nina Novikova", password="nina's password")
    assert joined.status_code == 302 and joined.headers["Location"] == "/"
    dashboard = page_text(newcomer.get("/"))
    assert "Nina Novikova" in dashboard and "Romashka" in dashboard

    rows = sql(app, "SELECT m.role, m.active, u.name FROM public.memberships m JOIN public.users u ON u.id = m.user_id "
                    "WHERE m.tenant_id = :t AND u.email = :e", t=company.id, e=address)
    assert [(r.role, r.active, r.name) for r in rows] == [("member", True, "Nina Novikova")]
    assert invitations_of(app, company)[0].accepted_at is not None
    # The new person signs in with the password they chose.
    sign_in(app, company, email=address, password="nina's password")


def test_an_invitation_link_cannot_be_reused(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    address, link = invite_someone(app, company, outbox, run_jobs)
    first, path = follow(app, link)
    assert accept(first, path, name="First", password=PASSWORD).status_code == 302
    before = memberships_of_tenant(app, company)

    second, _ = follow(app, link)
    again = second.get(path)
    assert again.status_code == 409 and "already accepted" in page_text(again)
    token = csrf_token(second.get("/signin").get_data(as_text=True))  # a valid form token of its own
    replay = second.post(path, data={"csrf_token": token, "name": "Second", "password": "another password"})
    assert replay.status_code == 409
    assert not is_signed_in(second)
    assert memberships_of_tenant(app, company) == before
    assert sql(app, "SELECT name FROM public.users WHERE email = :e", e=address)[0].name == "First"


def test_a_new_person_must_give_a_name_and_a_long_enough_password(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    address, link = invite_someone(app, company, outbox, run_jobs)
    client, path = follow(app, link)

    short = accept(client, path, name="Short", password="short")
    assert short.status_code == 200 and any("at least 8 characters" in m for m in messages(short))
    nameless = accept(client, path, name="  ", password=PASSWORD)
    assert nameless.status_code == 200 and any("required" in m for m in messages(nameless))
    assert not is_signed_in(client)
    assert sql(app, "SELECT 1 FROM public.users WHERE email = :e", e=address) == []


def test_an_expired_invitation_does_nothing(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    address, link = invite_someone(app, company, outbox, run_jobs)
    client, path = follow(app, link)
    from tenants.db import db
    from sqlalchemy import text
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("UPDATE public.invitations SET expires_at = now() - interval '1 minute' "
                                "WHERE tenant_id = :t"), {"t": company.id})
    response = client.get(path)
    assert response.status_code == 422 and "expired" in page_text(response)
    assert sql(app, "SELECT 1 FROM public.users WHERE email = :e", e=address) == []


def test_api_invitation_and_an_existing_account_joins_with_its_password(app, make_tenant, outbox, run_jobs):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    response = client_for(app, a).post("/api/v1/invitations", headers={"Authorization": f"Bearer {api_token(app, a)}"},
                                       json={"email": b.owner_email, "role": "admin"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == b.owner_email and body["role"] == "admin" and body["id"] and body["expires_at"]

    run_jobs()
    client, path = follow(app, invitation_link(outbox, b.owner_email))
    page = page_text(client.get(path))
    assert "already have a DealDocs account" in page

    wrong = accept(client, path, password="not my password")
    assert wrong.status_code == 200 and f"Wrong password for {b.owner_email}." in messages(wrong)
    assert not is_signed_in(client)
    assert len(memberships_of_tenant(app, a)) == 1

    joined = accept(client, path, password=b.password)
    assert joined.status_code == 302
    assert is_signed_in(client)
    assert (b.owner_id, "admin", True) in memberships_of_tenant(app, a)
    # Still the owner of their own company, with the same single account.
    assert (b.owner_id, "owner", True) in memberships_of_tenant(app, b)
    assert sql(app, "SELECT count(*) AS n FROM public.users WHERE email = :e", e=b.owner_email)[0].n == 1


def test_invitation_refusals(app, make_tenant):
    company = make_tenant()
    member = add_person(app, company, "member")
    admin = add_person(app, company, "admin")
    owner_token = api_token(app, company)
    api = client_for(app, company)

    def api_invite(token, **body):
        return api.post("/api/v1/invitations", headers={"Authorization": f"Bearer {token}"}, json=body)

    already = api_invite(owner_token, email=member.email.upper())
    assert already.status_code == 409 and already.get_json()["error"] == "already_member"
    bad_email = api_invite(owner_token, email="not an email")
    assert bad_email.status_code == 422 and "email" in bad_email.get_json()["fields"]
    bad_role = api_invite(owner_token, email=new_email(), role="superuser")
    assert bad_role.status_code == 422 and "role" in bad_role.get_json()["fields"]
    missing = api_invite(owner_token)
    assert missing.status_code == 422 and set(missing.get_json()["fields"]) == {"email"}

    refused = api_invite(api_token(app, company, member.email, member.password), email=new_email())
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    admin_token = api_token(app, company, admin.email, admin.password)
    no_owner = api_invite(admin_token, email=new_email(), role="owner")
    assert no_owner.status_code == 403
    assert api_invite(admin_token, email=new_email(), role="admin").status_code == 201  # admins may invite

    web_member = sign_in_person(app, company, member)
    assert web_invite(web_member, new_email()).status_code == 403
    owner = sign_in(app, company)
    assert web_invite(owner, "nonsense").status_code == 302
    assert "Enter a valid email address." in messages(owner.get("/people"))

    assert [i.role for i in invitations_of(app, company)] == ["admin"]


def test_invite_form_needs_csrf(app, make_tenant):
    company = make_tenant()
    owner = sign_in(app, company)
    response = owner.post("/people/invite", data={"email": new_email(), "role": "member"})
    assert response.status_code == 400
    assert invitations_of(app, company) == []


def test_a_new_invitation_replaces_the_pending_one(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    owner = sign_in(app, company)
    address = new_email()
    web_invite(owner, address)
    web_invite(owner, address, role="admin")
    run_jobs()
    links = [re.search(r"https?://\S+/invite/\S+", m.get_content()).group(0) for m in mail_to(outbox, address)]
    assert len(links) == 1  # the first job found its invitation gone and sent nothing
    assert [(i.email, i.role) for i in invitations_of(app, company)] == [(address, "admin")]


# --- roles and access ----------------------------------------------------------------------

def test_a_member_cannot_manage_people(app, make_tenant):
    company = make_tenant()
    member = add_person(app, company, "member")
    other = add_person(app, company, "member")
    owner_id = owner_membership_id(app, company)
    client = sign_in_person(app, company, member)
    before = memberships_of_tenant(app, company)

    page = page_text(client.get("/people"))
    assert "Invite a person" not in page and "Deactivate" not in page
    assert change_role(client, other.membership_id, "admin").status_code == 403
    assert change_role(client, owner_id, "member").status_code == 403
    assert change_role(client, member.membership_id, "owner").status_code == 403
    assert set_access(client, other.membership_id, "deactivate").status_code == 403
    assert set_access(client, owner_id, "deactivate").status_code == 403
    assert set_access(client, other.membership_id, "reactivate").status_code == 403
    assert memberships_of_tenant(app, company) == before


def test_an_admin_manages_members_but_not_owners(app, make_tenant):
    company = make_tenant()
    admin = add_person(app, company, "admin")
    member = add_person(app, company, "member")
    owner_id = owner_membership_id(app, company)
    client = sign_in_person(app, company, admin)

    assert change_role(client, owner_id, "member").status_code == 403
    assert set_access(client, owner_id, "deactivate").status_code == 403
    assert change_role(client, member.membership_id, "owner").status_code == 403
    assert membership(app, owner_id).role == "owner" and membership(app, owner_id).active
    assert membership(app, member.membership_id).role == "member"

    assert change_role(client, member.membership_id, "admin").status_code == 302
    assert membership(app, member.membership_id).role == "admin"
    assert set_access(client, member.membership_id, "deactivate").status_code == 302
    assert membership(app, member.membership_id).active is False
    assert set_access(client, member.membership_id, "reactivate").status_code == 302
    assert membership(app, member.membership_id).active is True


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_nobody_changes_their_own_role_or_access(app, make_tenant, role):
    company = make_tenant()
    if role == "owner":
        me, client = owner_membership_id(app, company), sign_in(app, company)
    else:
        person = add_person(app, company, "admin")
        me, client = person.membership_id, sign_in_person(app, company, person)
    for new_role in ("owner", "admin", "member"):
        assert change_role(client, me, new_role).status_code == 403
    assert set_access(client, me, "deactivate").status_code == 403
    assert membership(app, me).role == role and membership(app, me).active is True


def test_an_owner_promotes_and_demotes(app, make_tenant):
    company = make_tenant()
    person = add_person(app, company, "member")
    owner = sign_in(app, company)
    assert change_role(owner, person.membership_id, "owner").status_code == 302
    assert membership(app, person.membership_id).role == "owner"
    assert "Role changed." in page_text(owner.get("/people"))
    assert change_role(owner, person.membership_id, "member").status_code == 302
    assert membership(app, person.membership_id).role == "member"
    assert change_role(owner, person.membership_id, "superuser").status_code == 302
    assert membership(app, person.membership_id).role == "member"


def test_role_change_and_deactivation_need_csrf(app, make_tenant):
    company = make_tenant()
    person = add_person(app, company, "member")
    owner = sign_in(app, company)
    prefix = f"m{person.membership_id}"
    assert owner.post(f"/people/{person.membership_id}/role", data={f"{prefix}-role": "admin"}).status_code == 400
    assert owner.post(f"/people/{person.membership_id}/deactivate").status_code == 400
    assert membership(app, person.membership_id).role == "member"
    assert membership(app, person.membership_id).active is True


def test_deactivation_signs_out_at_once_and_revokes_tokens(app, make_tenant):
    company = make_tenant()
    person = add_person(app, company, "member")
    their_browser = sign_in_person(app, company, person)
    their_token = api_token(app, company, person.email, person.password)
    api = client_for(app, company)
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {their_token}"}).status_code == 200
    old_cookie = their_browser.get_cookie("session", domain=company.host.split(":")[0]).value

    owner = sign_in(app, company)
    assert set_access(owner, person.membership_id, "deactivate").status_code == 302

    nxt = their_browser.get("/people")
    assert nxt.status_code == 302 and urlsplit(nxt.headers["Location"]).path == "/signin"
    assert not is_signed_in(their_browser)
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {their_token}"}).status_code == 401
    again = client_for(app, company)
    page = again.get("/signin")
    refused = again.post("/signin", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                          "email": person.email, "password": person.password})
    assert refused.status_code == 401
    assert api.post("/api/v1/tokens", json={"email": person.email, "password": person.password}).status_code == 401
    assert person.email in page_text(owner.get("/people"))  # still listed, as deactivated

    assert set_access(owner, person.membership_id, "reactivate").status_code == 302
    # Reactivation lets them sign in again, but revives neither the old cookie nor the old token.
    revived = client_for(app, company)
    revived.set_cookie("session", old_cookie, domain=company.host.split(":")[0])
    assert not is_signed_in(revived)
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {their_token}"}).status_code == 401
    back = sign_in_person(app, company, person)
    assert is_signed_in(back)
    assert api.get("/api/v1/me", headers={
        "Authorization": f"Bearer {api_token(app, company, person.email, person.password)}"}).status_code == 200


def test_deactivation_in_one_company_leaves_the_other_alone(app, make_tenant):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    person = add_person(app, a, "member")
    add_person(app, b, "member", email_address=person.email)
    at_b = sign_in_person(app, b, person)
    token_b = api_token(app, b, person.email, person.password)
    assert set_access(sign_in(app, a), person.membership_id, "deactivate").status_code == 302
    assert is_signed_in(at_b)
    assert client_for(app, b).get("/api/v1/me", headers={"Authorization": f"Bearer {token_b}"}).status_code == 200


# --- the company switcher ------------------------------------------------------------------

def test_a_person_in_two_companies_switches_between_them(app, make_tenant):
    a = make_tenant(name="Acme Alpha")
    b = make_tenant(name="Globex Beta")
    c = make_tenant(name="Initech Gamma")
    person = add_person(app, a, "member", name="Sasha Two")
    add_person(app, b, "admin", email_address=person.email)
    at_a = sign_in_person(app, a, person)

    dashboard = at_a.get("/").get_data(as_text=True)
    switcher = re.search(r'<details class="switcher">.*?</details>', dashboard, flags=re.S)
    assert switcher, "no company switcher"
    assert "Acme Alpha" in switcher.group(0) and "Globex Beta" in switcher.group(0)
    assert "Initech Gamma" not in switcher.group(0)
    assert f'href="/switch/{b.slug}"' in switcher.group(0)

    hop = at_a.get(f"/switch/{b.slug}")
    assert hop.status_code == 302
    location = hop.headers["Location"]
    assert urlsplit(location).netloc == b.host and urlsplit(location).path == "/auth/handoff"
    at_b = client_for(app, b)
    assert at_b.get(path_of(location)).status_code == 302
    landed = page_text(at_b.get("/"))
    assert "Globex Beta" in landed and "Sasha Two" in landed
    assert is_signed_in(at_a)  # still signed in where they came from

    refused = at_a.get(f"/switch/{c.slug}")
    assert refused.status_code == 302 and refused.headers["Location"] == "/"
    assert "not a member of that company" in page_text(at_a.get("/"))
    assert at_a.get("/switch/no-such-company-here").headers["Location"] == "/"


def test_a_deactivated_company_membership_leaves_the_switcher(app, make_tenant):
    a, b = make_tenant(name="Acme Alpha"), make_tenant(name="Globex Beta")
    person = add_person(app, a, "member")
    at_b = add_person(app, b, "member", email_address=person.email)
    assert set_access(sign_in(app, b), at_b.membership_id, "deactivate").status_code == 302

    at_a = sign_in_person(app, a, person)
    assert "Globex Beta" not in page_text(at_a.get("/"))
    hop = at_a.get(f"/switch/{b.slug}")
    assert hop.status_code == 302 and hop.headers["Location"] == "/"


def test_switch_needs_a_signed_in_person(app, make_tenant):
    a, b = make_tenant(), make_tenant()
    response = client_for(app, a).get(f"/switch/{b.slug}")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/signin"


# --- tenant isolation ----------------------------------------------------------------------

def test_company_a_cannot_read_company_b_people(app, make_tenant):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    b_person = add_person(app, b, "member", name="Secret Globex Person")
    at_a = sign_in(app, a)

    at_b = client_for(app, b)
    copy_cookie(at_a, a.host, at_b, b.host)
    response = at_b.get("/people")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/signin"
    assert "Secret Globex Person" not in page_text(at_a.get("/people"))
    assert b_person.email not in page_text(at_a.get("/people"))

    token = api_token(app, a)
    api = client_for(app, b).get("/api/v1/people", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401 and b_person.email not in api.get_data(as_text=True)


def test_company_a_cannot_change_or_deactivate_company_b_people(app, make_tenant):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    b_member = add_person(app, b, "member")
    b_owner = owner_membership_id(app, b)
    before = memberships_of_tenant(app, b)
    at_a = sign_in(app, a)  # A's owner, a manager at A, attacks B's global membership ids

    for target in (b_member.membership_id, b_owner):
        assert change_role(at_a, target, "admin").status_code == 404
        assert change_role(at_a, target, "owner").status_code == 404
        assert set_access(at_a, target, "deactivate").status_code == 404
        assert set_access(at_a, target, "reactivate").status_code == 404

    # The same with A's cookie replayed on B's host: not signed in there at all.
    at_b = client_for(app, b)
    copy_cookie(at_a, a.host, at_b, b.host)
    page = at_b.get("/signin")
    token = csrf_token(page.get_data(as_text=True))
    prefix = f"m{b_member.membership_id}"
    hit = at_b.post(f"/people/{b_member.membership_id}/role", data={f"{prefix}-csrf_token": token, f"{prefix}-role": "admin"})
    assert hit.status_code == 302 and urlsplit(hit.headers["Location"]).path == "/signin"
    hit = at_b.post(f"/people/{b_member.membership_id}/deactivate", data={"csrf_token": token})
    assert hit.status_code == 302 and urlsplit(hit.headers["Location"]).path == "/signin"

    assert memberships_of_tenant(app, b) == before


def test_company_a_cannot_accept_or_create_company_b_invitations(app, make_tenant, outbox, run_jobs):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    address = new_email()
    web_invite(sign_in(app, b), address)
    run_jobs()
    link = invitation_link(outbox, address)
    path = path_of(link)

    on_a = client_for(app, a)
    assert on_a.get(path).status_code == 404
    token = csrf_token(on_a.get("/signin").get_data(as_text=True))
    assert on_a.post(path, data={"csrf_token": token, "name": "Intruder", "password": PASSWORD}).status_code == 404
    assert not is_signed_in(on_a)
    assert sql(app, "SELECT 1 FROM public.users WHERE email = :e", e=address) == []
    assert invitations_of(app, b)[0].accepted_at is None

    # A's owner, with A's token, cannot invite into B from B's host.
    response = client_for(app, b).post("/api/v1/invitations", headers={"Authorization": f"Bearer {api_token(app, a)}"},
                                       json={"email": new_email()})
    assert response.status_code == 401
    assert len(invitations_of(app, b)) == 1

    # The link still works where it belongs.
    client, path = follow(app, link)
    assert accept(client, path, name="Rightful", password=PASSWORD).status_code == 302
    assert is_signed_in(client)


def test_the_invitation_mail_speaks_the_inviters_language_and_no_secret_is_queued(app, make_tenant, outbox,
                                                                           run_jobs):
    from saas.jobs import queue

    company = make_tenant(name="Ромашка")
    owner = sign_in(app, company)
    owner.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ru-RU,ru;q=0.9"
    address = new_email()
    assert web_invite(owner, address).status_code == 302
    with app.app_context():
        queued = [(job.description, job.args) for job in queue().get_jobs()]
    run_jobs()
    (message,) = mail_to(outbox, address)
    assert "Ромашка" in message["Subject"] and "приглашает" in message["Subject"]
    assert "Принять приглашение:" in message.get_content()
    token = invitation_link(outbox, address).rsplit("/", 1)[1]
    assert queued and not any(token in repr(job) for job in queued)  # ids only: no secret in the queue


def test_names_with_line_breaks_are_refused(app):
    """A company name ends up in mail subjects: a line break there would break every invitation."""
    from .conftest import SERVER_NAME, unique_slug

    slug = unique_slug()
    response = client_for(app, SERVER_NAME).post("/api/v1/signup", json={
        "company_name": "Romashka\r\nBcc: everyone@example.com", "slug": slug,
        "email": f"boss@{slug}.example.com", "password": PASSWORD})
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"company_name": [response.get_json()["message"]]}


def test_two_simultaneous_accepts_of_one_invitation_make_one_member(app, make_tenant, outbox, run_jobs):
    import threading

    from saas.auth.services import accept_invitation
    from saas.errors import ServiceError
    from tenants.registry import lookup_tenant

    company = make_tenant()
    address, link = invite_someone(app, company, outbox, run_jobs)
    token = link.rsplit("/", 1)[1]
    outcomes = []

    def accept():
        with app.app_context():
            try:
                accept_invitation(lookup_tenant(tenant_id=company.id), token, name="Twin", password=PASSWORD)
                outcomes.append("joined")
            except ServiceError as error:
                outcomes.append(error.code)

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["conflict", "joined"]
    assert sql(app, "SELECT count(*) FROM public.users u JOIN public.memberships m ON m.user_id = u.id"
                    " WHERE u.email = :e AND m.tenant_id = :t", e=address, t=company.id) == [(1,)]


def test_an_api_token_records_when_it_was_last_used(app, make_tenant):
    company = make_tenant()
    token = api_token(app, company)
    assert sql(app, "SELECT last_used_at FROM public.api_tokens WHERE user_id = :u", u=company.owner_id) == [(None,)]
    client = client_for(app, company)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    (first,), = sql(app, "SELECT last_used_at FROM public.api_tokens WHERE user_id = :u", u=company.owner_id)
    assert first is not None
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert sql(app, "SELECT last_used_at FROM public.api_tokens WHERE user_id = :u", u=company.owner_id) == [(first,)]


def test_the_people_page_tells_a_sent_invitation_from_one_not_sent(make_app, make_tenant, tmp_path):
    """Mail that cannot go out (SMTP down) leaves the invitation visibly unsent, not silently lost."""
    from saas.jobs import TenantSimpleWorker, make_worker

    from .conftest import free_port

    app = make_app(SMTP_URL=f"smtp://127.0.0.1:{free_port()}", QUEUE_NAME=f"dealdocs-test-smtp-{uuid.uuid4().hex[:8]}")
    company = make_tenant()
    owner = sign_in(app, company)
    address = new_email()
    web_invite(owner, address)
    make_worker(app, TenantSimpleWorker).work(burst=True)  # the send fails: nothing listens there
    page = owner.get("/people").get_data(as_text=True)
    assert address in page and "not sent yet" in page
    assert sql(app, "SELECT sent_at FROM public.invitations WHERE email = :e", e=address) == [(None,)]

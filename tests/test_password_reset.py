"""Forgot password: a mailed one-hour, one-use link; nothing tells which emails have accounts."""
import email
import email.policy
import re
from urllib.parse import urlsplit

from .conftest import PASSWORD, SERVER_NAME, api_token, client_for, csrf_token, sign_in

NEW_PASSWORD = "a brand new passphrase"


def ask_for_reset(app, host: str, address: str):
    client = client_for(app, host)
    page = client.get("/forgot")
    return client.post("/forgot", data={"csrf_token": csrf_token(page.get_data(as_text=True)), "email": address})


def mailed_link(outbox, address: str) -> str | None:
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            return re.search(r"http://\S+/reset/\S+", message.get_content()).group(0)
    return None


def choose_password(app, link: str, password: str = NEW_PASSWORD):
    client = client_for(app, urlsplit(link).netloc)
    page = client.get(urlsplit(link).path)
    return client, client.post(urlsplit(link).path, data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "password": password})


def test_a_member_resets_the_password_and_every_old_session_and_token_ends(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    old_session, old_token = sign_in(app, company), api_token(app, company)
    response = ask_for_reset(app, company.host, company.owner_email.upper())
    assert response.status_code == 200 and "on its way" in response.get_data(as_text=True)
    run_jobs()
    link = mailed_link(outbox, company.owner_email)
    assert link and urlsplit(link).netloc == company.host

    browser, response = choose_password(app, link)
    assert response.status_code == 302  # signed in on the company's host
    assert browser.get("/").status_code == 200
    assert old_session.get("/people").status_code == 302  # the old cookie is dead
    assert client_for(app, company).get("/api/v1/me", headers={"Authorization": f"Bearer {old_token}"}
                                        ).status_code == 401
    sign_in(app, company, password=NEW_PASSWORD)
    # The link worked once: the password it was made for is gone.
    _, again = choose_password(app, link, "yet another passphrase")
    assert again.status_code == 422 and "expired or was already used" in again.get_data(as_text=True)


def test_the_answer_does_not_reveal_whether_an_account_exists(app, make_tenant, outbox, run_jobs):
    company, other = make_tenant(), make_tenant()
    known = ask_for_reset(app, company.host, company.owner_email).get_data(as_text=True)
    unknown = ask_for_reset(app, company.host, "nobody@example.com").get_data(as_text=True)
    outsider = ask_for_reset(app, company.host, other.owner_email).get_data(as_text=True)  # not a member here
    strip = lambda html: re.sub(r"\S+@\S+|csrf_token[^>]+", "", html)  # noqa: E731
    assert strip(known) == strip(unknown) == strip(outsider)
    run_jobs()
    assert mailed_link(outbox, company.owner_email)
    assert mailed_link(outbox, "nobody@example.com") is None
    assert mailed_link(outbox, other.owner_email) is None  # tenant A's host does not mail B's people


def test_on_the_public_site_any_account_can_reset(app, make_tenant, outbox, run_jobs):
    """The way out for someone whose email was taken by a sign-up they did not make."""
    company = make_tenant()
    ask_for_reset(app, SERVER_NAME, company.owner_email)
    run_jobs()
    link = mailed_link(outbox, company.owner_email)
    assert urlsplit(link).netloc == SERVER_NAME
    _, response = choose_password(app, link)
    assert response.status_code == 302
    sign_in(app, company, password=NEW_PASSWORD)


def test_a_forged_or_short_reset_is_refused_and_changes_nothing(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    _, forged = choose_password(app, f"http://{company.host}/reset/not-a-real-token")
    assert forged.status_code == 422
    ask_for_reset(app, company.host, company.owner_email)
    run_jobs()
    _, short = choose_password(app, mailed_link(outbox, company.owner_email), "short")
    assert short.status_code == 422
    sign_in(app, company, password=PASSWORD)  # unchanged

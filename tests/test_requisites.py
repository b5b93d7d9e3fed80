"""“Our company” settings: requisites and images for generated documents, through the real page.

Forms are posted as a browser posts them (CSRF token, multipart for images); what was saved is
read back through the services inside the company's schema.
"""
import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from saas.errors import Invalid
from saas.settings import requisites as company

from .conftest import csrf_token, sign_in
from .crm_helpers import acting_as, add_person
from .test_auth import field_errors, messages, page_text
from .test_browser import shot
from .test_crm_browser import sign_in_in_browser

PAGE = "/settings/company"
FORBIDDEN_REASON = "Only the owner and administrators change these settings."

RUSSIAN = {"name": "Romashka", "legal_name": "LLC “Romashka”", "tin": "7707083893", "kpp": "773601001",
           "ogrn": "1027700132195", "address": "Moscow, Tverskaya 1", "bank_name": "Sberbank",
           "bank_bik": "044525225", "bank_account": "40702810938000000001", "bank_corr_account": "30101810400000000225",
           "bank_swift": "SABRRUMM", "director": "Ivanov I. I.", "accountant": "Petrova A. A.",
           "phone": "+7 495 123-45-67", "email": "office@romashka.example", "website": "https://romashka.example"}


def picture(image_format: str, size=(40, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, image_format)
    return out.getvalue()


def post(client, path: str, data: dict | None = None, **kwargs):
    """A form post carrying this browser session's CSRF token (from a page every member may open)."""
    token = csrf_token(client.get("/recycle-bin").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def upload(client, name: str, content: bytes, filename: str = "picture.png", content_type: str = "image/png"):
    return post(client, f"{PAGE}/images/{name}", {name: (io.BytesIO(content), filename, content_type)},
                content_type="multipart/form-data")


def saved(app, tenant) -> dict:
    with acting_as(app, tenant):
        return company.requisites()


@pytest.fixture
def owner(app, make_tenant):
    tenant = make_tenant(name="Romashka Trading")
    return tenant, sign_in(app, tenant)


# --- requisites ----------------------------------------------------------------------------

def test_requisites_saved_through_the_page_and_read_back(app, owner):
    tenant, client = owner
    assert client.get(PAGE).status_code == 200

    response = post(client, PAGE, {**RUSSIAN, "director": "  Ivanov   I. I. "})
    assert response.status_code == 302, messages(response)
    assert saved(app, tenant) == {**RUSSIAN, "director": "Ivanov I. I."}
    page = client.get(PAGE)
    assert "Requisites saved. New documents will use them." in messages(page)
    assert 'value="044525225"' in page.get_data(as_text=True)
    assert "Ivanov I. I." in page_text(page)


def test_every_key_is_there_and_the_short_name_falls_back_to_the_company(app, make_tenant):
    tenant = make_tenant(name="Vasilek")
    values = saved(app, tenant)
    assert set(values) == set(company.KEYS)
    assert values == {**{key: "" for key in company.KEYS}, "name": "Vasilek"}

    with acting_as(app, tenant) as owner:
        company.save_requisites(owner, {"tin": "DE123456789", "email": "hello@vasilek.example"})
    with acting_as(app, tenant) as owner:  # keys not given keep their values
        company.save_requisites(owner, {"phone": "+49 30 1234567"})
    values = saved(app, tenant)
    assert (values["name"], values["tin"], values["phone"]) == ("Vasilek", "DE123456789", "+49 30 1234567")


def test_wrong_fields_are_named_and_what_was_typed_stays(app, owner):
    tenant, client = owner
    post(client, PAGE, {"name": "Kept"})
    typed = {**RUSSIAN, "tin": "77070838", "email": "office at romashka", "bank_account": "4070281093",
             "bank_swift": "SAB", "legal_name": "x" * 301}

    response = post(client, PAGE, typed)
    assert response.status_code == 422
    assert field_errors(response, "tin") == [
        "A Russian TIN (INN) has 10 digits (an organisation) or 12 (a sole proprietor)."]
    assert field_errors(response, "email") == ["Enter an email address like office@example.com."]
    assert field_errors(response, "bank_account") == [
        "Russian bank accounts have 20 digits. Check the number, or the BIK if the bank is abroad."]
    assert field_errors(response, "bank_swift") == ["A SWIFT code has 8 or 11 characters, for example SABRRUMM."]
    assert field_errors(response, "legal_name") == ["Too long: 300 characters at most."]
    assert field_errors(response, "kpp") == [] and field_errors(response, "phone") == []
    body = page_text(response)
    assert 'value="office at romashka"' in body and 'value="Romashka"' in body
    assert saved(app, tenant)["name"] == "Kept"  # nothing saved


def test_foreign_requisites_are_accepted_and_checks_stay_light(app, make_tenant):
    tenant = make_tenant()
    foreign = {"tin": "GB 123 4567 89", "ogrn": "08123456", "bank_bik": "DEUTDEFF500", "bank_account":
               "DE89 3704 0044 0532 0130 00", "website": "example.co.uk/about"}
    with acting_as(app, tenant) as owner:
        company.save_requisites(owner, foreign)
    assert {key: saved(app, tenant)[key] for key in foreign} == foreign

    with acting_as(app, tenant) as owner:
        with pytest.raises(Invalid) as refused:
            company.save_requisites(owner, {"tin": "12", "kpp": "12345", "phone": "call me", "email": "",
                                            "bank_bik": "04452"})
        # A KPP makes the company Russian: the kept foreign OGRN no longer fits either.
        assert set(refused.value.fields) == {"tin", "kpp", "ogrn", "phone", "bank_bik"}


# --- images --------------------------------------------------------------------------------

def test_png_and_jpeg_upload_show_and_remove(app, owner):
    tenant, client = owner
    png, jpeg = picture("PNG"), picture("JPEG")
    assert client.get(f"{PAGE}/images/logo").status_code == 404

    assert upload(client, "logo", png).status_code == 302
    # The client's word on the type is not trusted: the bytes say JPEG.
    assert upload(client, "stamp", jpeg, "stamp.png", "image/png").status_code == 302
    assert "Stamp uploaded." in messages(client.get(PAGE))

    shown = client.get(f"{PAGE}/images/logo")
    assert shown.status_code == 200 and shown.data == png
    assert shown.headers["Content-Type"] == "image/png"
    assert shown.headers["Cache-Control"] == "no-store"
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"{PAGE}/images/stamp").headers["Content-Type"] == "image/jpeg"
    assert f'src="{PAGE}/images/logo"' in client.get(PAGE).get_data(as_text=True)
    with acting_as(app, tenant):
        assert set(company.images()) == {"logo", "stamp"} and company.image("stamp").data == jpeg

    assert post(client, f"{PAGE}/images/logo/delete").status_code == 302
    assert client.get(f"{PAGE}/images/logo").status_code == 404
    assert client.get(f"{PAGE}/images/stamp").status_code == 200
    assert client.get(f"{PAGE}/images/seal").status_code == 404


@pytest.mark.parametrize("content, message", [
    (picture("GIF"), "Only PNG or JPEG images can be used. Save the picture as PNG or JPEG and upload it again."),
    (b"just some text, not a picture", "Only PNG or JPEG images can be used. Save the picture as PNG or JPEG and "
                                       "upload it again."),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "The file is damaged or not really a PNG or JPEG image. Save it again and "
                                         "upload it."),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * (1024 * 1024), "The file is larger than 1 MB. Save the image smaller or in a "
                                                   "lower resolution."),
])
def test_wrong_images_are_refused_with_the_reason(app, owner, content, message):
    tenant, client = owner
    response = upload(client, "signature", content)
    assert response.status_code == 422
    assert field_errors(response, "signature") == [message]
    assert client.get(f"{PAGE}/images/signature").status_code == 404


def test_a_form_without_a_file_asks_for_one(owner):
    _tenant, client = owner
    response = post(client, f"{PAGE}/images/logo", content_type="multipart/form-data")
    assert response.status_code == 422
    assert field_errors(response, "logo") == ["Choose a PNG or JPEG file to upload."]


# --- who may ---------------------------------------------------------------------------------

def test_members_may_not_see_or_change_our_company(app, make_tenant):
    tenant = make_tenant()
    with acting_as(app, tenant) as owner:
        company.save_image(owner, "logo", picture("PNG"))
    member = add_person(app, tenant, role="member")
    client = sign_in(app, tenant, email=member.email, password=member.password)

    for response in (client.get(PAGE), post(client, PAGE, {"name": "Hijacked"}),
                     client.get(f"{PAGE}/images/logo"), upload(client, "logo", picture("PNG")),
                     post(client, f"{PAGE}/images/logo/delete")):
        assert response.status_code == 403
        assert FORBIDDEN_REASON in page_text(response)
    with acting_as(app, tenant) as owner:
        assert company.image("logo") is not None and company.requisites()["name"] == tenant.name
    administrator = add_person(app, tenant, role="admin")
    assert sign_in(app, tenant, email=administrator.email, password=administrator.password).get(PAGE).status_code == 200


def test_one_company_never_sees_anothers_requisites_or_images(app, make_tenant):
    a, b = make_tenant(name="Alpha"), make_tenant(name="Bravo")
    with acting_as(app, b) as b_owner:
        company.save_requisites(b_owner, {"legal_name": "Bravo Secret Holdings", "tin": "5012345678"})
        company.save_image(b_owner, "logo", picture("PNG"))
    client = sign_in(app, a)

    page = page_text(client.get(PAGE))
    assert "Bravo Secret Holdings" not in page and "5012345678" not in page
    assert client.get(f"{PAGE}/images/logo").status_code == 404
    assert post(client, f"{PAGE}/images/logo/delete").status_code == 302  # removes A's (none), not B's
    with acting_as(app, b):
        assert company.image("logo") is not None
        assert company.requisites()["legal_name"] == "Bravo Secret Holdings"
    assert saved(app, a)["legal_name"] == ""
    client.host = b.host  # A's session is not a session on B's host
    assert client.get(f"{PAGE}/images/logo").status_code in (302, 401, 403, 404)


# --- in a real browser ---------------------------------------------------------------------

@pytest.mark.browser
def test_requisites_and_a_stamp_in_the_browser(app, live_server, page, make_tenant, tmp_path):
    tenant = make_tenant("Romashka Trading")
    stamp = tmp_path / "stamp.png"
    stamp.write_bytes(picture("PNG", (120, 120)))
    sign_in_in_browser(page, tenant)

    page.goto(tenant.base_url + PAGE)
    expect(page.locator("input[name=name]")).to_have_attribute("placeholder", "Romashka Trading")
    page.fill("input[name=tin]", "7707083893")
    page.fill("input[name=kpp]", "7736")
    page.click("button:has-text('Save requisites')")
    kpp = page.locator("label.has-error", has=page.locator("input[name=kpp]"))
    expect(kpp).to_contain_text("A KPP has 9 characters")
    expect(page.locator("input[name=tin]")).to_have_value("7707083893")
    kpp.locator("input").fill("773601001")
    page.click("button:has-text('Save requisites')")
    expect(page.locator("text=Requisites saved.")).to_be_visible()

    page.set_input_files("input[name=stamp]", str(stamp))
    page.locator("form", has=page.locator("input[name=stamp]")).locator("button:has-text('Upload')").click()
    page.wait_for_url(re.compile(r"/settings/company#images$"))
    thumbnail = page.locator("img[alt=Stamp]")
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.naturalWidth") == 120  # served, and decoded by the browser
    shot(page, "settings-company")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Remove')")
    expect(page.locator("text=Stamp removed.")).to_be_visible()
    expect(page.locator("img[alt=Stamp]")).to_have_count(0)

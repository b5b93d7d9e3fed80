"""Translations: every user-facing string is extracted and translated into Russian, the compiled
.mo matches the .po, and each page speaks the language the person chose (profile, then the page's
language switch, then the browser).

Updating the catalogs (from the repository root):

    pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_pgettext:1c,2 --project DealDocs --no-wrap \
        -o saas/translations/messages.pot .
    pybabel update --no-wrap -i saas/translations/messages.pot -d saas/translations
    # translate the new/changed entries in saas/translations/ru/LC_MESSAGES/messages.po
    # (and remove any "#, fuzzy" flag once checked), then:
    pybabel compile -d saas/translations --statistics
"""
import io
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages import frontend
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from .conftest import client_for, csrf_token, sign_in

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "babel.cfg"
TRANSLATIONS = ROOT / "saas" / "translations"
TRANSLATED_LOCALES = ["ru"]  # every LANGUAGES entry except the source language (English)
# The same keywords as the documented command: pybabel extract -k _l -k lazy_gettext -k lazy_pgettext:1c,2
KEYWORDS = {**DEFAULT_KEYWORDS, **frontend.parse_keywords(["_l", "lazy_gettext", "lazy_pgettext:1c,2"])}


# --- helpers -------------------------------------------------------------------------------

def extracted_catalog() -> Catalog:
    """What `pybabel extract -F babel.cfg -k _l -k lazy_gettext .` finds in the current source."""
    parse = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping
    with open(MAPPING, encoding="utf-8") as fileobj:
        method_map, options_map = parse(fileobj, str(MAPPING))

    def only_the_package(path) -> bool:  # skip .venv, instance/ data, __pycache__…
        relative = os.path.relpath(path, ROOT)
        name = os.path.basename(path)
        return not name.startswith((".", "_")) and (relative == "saas" or relative.startswith("saas" + os.sep))

    catalog = Catalog(locale=None)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS, directory_filter=only_the_package):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def load_po(locale: str) -> Catalog:
    with open(po_path(locale), "rb") as fileobj:
        return read_po(fileobj, locale=locale)


def key(message) -> tuple:
    # A plural message's id is (singular, plural); read back from a .mo it is a list.
    message_id = tuple(message.id) if isinstance(message.id, (list, tuple)) else message.id
    return message_id, message.context


def where(message) -> str:
    return ", ".join(f"{file}:{line}" for file, line in message.locations) or "?"


# %(name)s, %(n)d, %s, %5.2f, %%… — everything Python's % operator would act on.
FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa%]")


def format_specs(text: str) -> Counter:
    return Counter(FORMAT_SPEC.findall(text))


def stray_percent(text: str) -> bool:
    """A % that is not part of a format spec: Jinja's newstyle gettext applies % to every string."""
    return "%" in FORMAT_SPEC.sub("", text)


# --- the catalogs --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def extracted():
    return extracted_catalog()


def test_extraction_covers_python_lazy_strings_and_templates(extracted):
    """babel.cfg keeps finding strings in every kind of file (guards against a silently empty run)."""
    files = {os.path.normpath(file) for message in extracted for file, _line in message.locations}
    assert len([m for m in extracted if m.id]) > 50
    ids = {m.id for m in extracted}
    assert "Browser language" in ids  # _l() in saas/auth/forms.py
    assert "Wrong email or password for this company." in ids  # _l() in saas/auth/services.py
    assert "Profile saved." in ids  # _() in saas/auth/views.py
    assert "Dashboard" in ids  # _() in saas/templates/base.html
    assert "Accept the invitation:" in ids  # the plain-text mail template
    assert any(f.endswith(".txt") for f in files) and any(f.endswith(".html") for f in files)


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_every_extracted_string_is_translated(extracted, locale):
    catalog = load_po(locale)
    assert not catalog.fuzzy, f"{po_path(locale)}: the header is marked fuzzy"
    translated = {key(m): m for m in catalog if m.id}
    problems = []
    for message in extracted:
        if not message.id:
            continue
        entry = translated.get(key(message))
        if entry is None:
            problems.append(f"missing from {locale}/messages.po: {message.id!r} ({where(message)})")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {message.id!r} ({where(message)})")
        elif isinstance(entry.id, (list, tuple)):
            forms = list(entry.string) if isinstance(entry.string, (list, tuple)) else [entry.string]
            if len(forms) != catalog.num_plurals or not all(forms):
                problems.append(f"plural forms incomplete ({len(forms)} of {catalog.num_plurals}): {message.id!r}")
        elif not entry.string:
            problems.append(f"untranslated: {message.id!r} ({where(message)})")
    assert not problems, "run the pybabel commands in this file's docstring, then translate:\n" + "\n".join(problems)


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_no_fuzzy_entries_and_placeholders_kept(locale):
    catalog = load_po(locale)
    problems = [f"fuzzy: {m.id!r}" for m in catalog if m.id and m.fuzzy]
    for message in catalog:
        if not message.id:
            continue
        ids = list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]
        strings = list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]
        for index, string in enumerate(strings):
            if not string:
                continue
            source = ids[min(index, len(ids) - 1)]
            expected = format_specs(source)
            if isinstance(message.id, (list, tuple)):
                # a plural form may drop the count only where the singular does (e.g. "one file")
                expected_any = [format_specs(i) for i in ids]
                ok = format_specs(string) in expected_any
            else:
                ok = format_specs(string) == expected
            if not ok:
                problems.append(f"placeholders differ: {source!r} → {string!r}")
            if stray_percent(string) and not stray_percent(source):
                problems.append(f"a bare % (write %% or rephrase): {string!r}")
    # Babel's own checks too (python-format consistency, plural count).
    for message, errors in catalog.check():
        problems += [f"{message.id!r}: {error}" for error in errors]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_compiled_mo_matches_po(locale):
    """The committed .mo (what the app loads) says exactly what the .po says."""
    mo_file = po_path(locale).with_suffix(".mo")
    assert mo_file.exists(), f"{mo_file} is missing: pybabel compile -d saas/translations"
    fresh = io.BytesIO()
    write_mo(fresh, load_po(locale), use_fuzzy=False)
    fresh.seek(0)
    with open(mo_file, "rb") as fileobj:
        committed_bytes = fileobj.read()

    def messages(mo: Catalog) -> dict:
        return {key(m): tuple(m.string) if isinstance(m.string, (list, tuple)) else m.string
                for m in mo if m.id}

    expected = messages(read_mo(io.BytesIO(fresh.getvalue())))
    committed = messages(read_mo(io.BytesIO(committed_bytes)))
    stale = sorted(str(k[0]) for k in expected.keys() | committed.keys() if expected.get(k) != committed.get(k))
    assert not stale, f"{mo_file} is out of date; run pybabel compile -d saas/translations. Differs: {stale[:10]}"

    # Loaded the way Flask-Babel loads it, the plural rule matches too.
    fresh_t, committed_t = Translations(fresh), Translations(io.BytesIO(committed_bytes))
    assert [fresh_t.plural(n) for n in range(200)] == [committed_t.plural(n) for n in range(200)]


def test_translations_exist_only_for_configured_languages(tmp_path):
    from saas.config import load_config

    languages = load_config(str(tmp_path))["LANGUAGES"]
    assert set(TRANSLATED_LOCALES) == set(languages) - {"en"}
    on_disk = {p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")}
    assert on_disk == set(TRANSLATED_LOCALES)


# --- the locale the pages use --------------------------------------------------------------

RU_BROWSER = "ru-RU,ru;q=0.9"
EN_BROWSER = "en-US,en;q=0.9"


def browser(client, accept_language: str):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept_language
    return client


def test_signin_page_follows_the_browser_language(app, make_tenant):
    company = make_tenant(name="Romashka")

    ru = browser(client_for(app, company), RU_BROWSER).get("/signin")
    html = ru.get_data(as_text=True)
    assert ru.status_code == 200
    assert '<html lang="ru">' in html
    assert "Вход в компанию «Romashka»" in html
    assert "Пароль" in html and ">Войти<" in html
    assert "Sign in to" not in html

    en = browser(client_for(app, company), EN_BROWSER).get("/signin")
    html = en.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Sign in to Romashka" in html and "Password" in html
    assert "Вход" not in html


def test_service_errors_are_rendered_in_the_readers_language(app, make_tenant):
    """Lazy strings from services (_l) are translated when shown, not when defined."""
    company = make_tenant()
    client = browser(client_for(app, company), RU_BROWSER)
    token = csrf_token(client.get("/signin").get_data(as_text=True))
    response = client.post("/signin", data={"csrf_token": token, "email": company.owner_email,
                                            "password": "wrong password"})
    assert response.status_code == 401
    assert "Неверная почта или пароль для этой компании." in response.get_data(as_text=True)


def test_profile_language_wins_over_the_browser(app, make_tenant):
    company = make_tenant()
    client = browser(sign_in(app, company), EN_BROWSER)
    page = client.get("/profile")
    assert "Your profile" in page.get_data(as_text=True)

    response = client.post("/profile", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "name": "Иван Петров", "locale": "ru"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]

    html = client.get("/profile").get_data(as_text=True)
    assert '<html lang="ru">' in html
    assert "Ваш профиль" in html and "Профиль сохранён." in html
    assert "Your profile" not in html
    dashboard = client.get("/").get_data(as_text=True)
    assert "Сделки" in dashboard and "Выйти" in dashboard

    # It is the person's setting, not this session's: a new sign-in with an English browser.
    again = browser(sign_in(app, company), EN_BROWSER).get("/").get_data(as_text=True)
    assert '<html lang="ru">' in again and "Сделки" in again


def test_language_switch_on_the_public_site(app):
    client = browser(client_for(app, app.config["SERVER_NAME"]), EN_BROWSER)
    html = client.get("/").get_data(as_text=True)
    assert "Deals and their documents, in one place" in html and '<html lang="en">' in html

    response = client.get("/lang/ru?next=/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/")
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="ru">' in html
    assert "Сделки и их документы — в одном месте" in html
    assert "Создайте свою компанию" in html and "Название компании" in html

    client.get("/lang/xx")  # an unknown code changes nothing
    assert '<html lang="ru">' in client.get("/").get_data(as_text=True)
    client.get("/lang/en")
    assert "Deals and their documents, in one place" in client.get("/").get_data(as_text=True)

"""The ready templates every company starts with: ten of them, each fills a real deal into a real PDF."""
import io
from datetime import date
from decimal import Decimal

from babel.numbers import format_currency
from num2words import num2words
from PIL import Image
from pypdf import PdfReader

from saas.crm import services as crm
from saas.crm.models import Entity
from saas.documents import doc_templates
from saas.documents.pdf import to_pdf
from saas.settings.requisites import save_image, save_requisites
from tenants.registry import lookup_tenant

from .crm_helpers import acting_as

KINDS = ("proposal", "contract", "invoice", "act", "letter")
NUMBER = "CT-2026-0042"
TODAY = date(2026, 3, 5)
OUR = {"name": "Romashka", "legal_name": "ООО «Ромашка»", "tin": "7707083893", "kpp": "773601001",
       "ogrn": "1027700132195", "address": "Москва, ул. Ленина, д. 1", "bank_name": "ПАО Сбербанк",
       "bank_bik": "044525225", "bank_account": "40702810938000000001",
       "bank_corr_account": "30101810400000000225", "director": "Иванов И. И.", "accountant": "Петрова А. А.",
       "phone": "+7 495 123-45-67", "email": "office@romashka.example.com"}
LINES = {"ru": [{"name": "Окно ПВХ «Стандарт»", "quantity": "3", "unit": "шт.", "price": "12500.50",
                 "discount": "10", "vat_rate": "20"},
                {"name": "Доставка & подъём", "quantity": "1", "unit": "усл.", "price": "1500", "vat_rate": "20"},
                {"name": "Монтаж под ключ", "quantity": "2.5", "unit": "ч", "price": "2000", "vat_rate": "20"}],
         "en": [{"name": "Oak desk \"Classic\"", "quantity": "2", "unit": "pcs", "price": "480", "vat_rate": "20"},
                {"name": "Delivery & assembly", "quantity": "1", "unit": "job", "price": "95.50", "vat_rate": "20"},
                {"name": "Extended warranty", "quantity": "2", "unit": "yr", "price": "40", "discount": "5"}]}
CURRENCY = {"ru": "RUB", "en": "USD"}
CLIENTS = {"ru": "АО «Василёк»", "en": "Bluebell & Sons Ltd"}


def make_deal(owner, language: str, client: str):
    firm = crm.create(Entity.COMPANY, {"name": client, "tin": "5012345678", "address": "Тверь, пр. Мира, 7",
                                       "emails": "buy@client.example.com"}, owner)
    person = crm.create(Entity.CONTACT, {"first_name": "Olga", "last_name": "Smirnova", "position": "Buyer",
                                         "company_ids": [firm.id]}, owner)
    return crm.create(Entity.DEAL, {"title": f"Order for {client}", "currency": CURRENCY[language],
                                    "company_id": firm.id, "contact_ids": [person.id],
                                    "line_items": LINES[language]}, owner)


def pdf_text(company, template, deal, owner, image_url=lambda name: "") -> tuple[str, PdfReader]:
    """The document's PDF as plain text (whitespace of every kind made one space), and the PDF."""
    tenant = lookup_tenant(tenant_id=company.id)
    html = doc_templates.fill(tenant, template, deal, user_id=owner.user_id, number=NUMBER,
                              title=template.name, image_url=image_url, today=TODAY)
    reader = PdfReader(io.BytesIO(to_pdf(html, tenant)))
    return plain(" ".join(page.extract_text() for page in reader.pages)), reader


def plain(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def money(amount, language: str) -> str:
    return plain(format_currency(Decimal(amount), CURRENCY[language], locale=language))


def in_words(amount, language: str) -> str:
    return num2words(Decimal(amount), lang=language, to="currency", currency=CURRENCY[language])


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 40), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_every_company_gets_ten_templates_that_fill_a_deal_into_a_pdf(app, make_tenant):
    company = make_tenant(name="Romashka")
    with acting_as(app, company) as owner:
        save_requisites(owner, OUR)
        deals = {language: make_deal(owner, language, client) for language, client in CLIENTS.items()}
        templates = doc_templates.all_templates()
        assert sorted((t.document_type, t.language) for t in templates) == \
            sorted((kind, language) for kind in KINDS for language in ("en", "ru"))
        assert all(t.applies_to == "deal" and t.page_size == "A4" for t in templates)
        for template in templates:
            doc_templates.check(template)
            deal, language = deals[template.language], template.language
            text, _ = pdf_text(company, template, deal, owner)
            total = crm.deal_totals(deal.items)["total"]
            expected = [NUMBER, CLIENTS[language],
                        *(line["name"] for line in LINES[language]), money(total, language),
                        "Page 1 of" if language == "en" else "Страница 1 из"]
            if template.document_type in ("invoice", "act"):
                expected.append(in_words(total, language))
            for wanted in expected:
                assert wanted.lower() in text.lower(), f"{template.name}: no “{wanted}” in {text[:3000]}"
            assert "None" not in text
        russian_invoice = next(t for t in templates if (t.document_type, t.language) == ("invoice", "ru"))
        text, _ = pdf_text(company, russian_invoice, deals["ru"], owner)
        for requisite in ("Банк получателя", "БИК 044525225", "Сч. № 30101810400000000225",
                          "ИНН 7707083893", "КПП 773601001", "Получатель", "Иванов И. И.", "М.П."):
            assert plain(requisite) in text, requisite


def test_the_templates_print_our_logo_stamp_and_signature_when_uploaded(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        for name in ("logo", "stamp", "signature"):
            save_image(owner, name, png())
        deal = make_deal(owner, "en", "Bluebell")
        for template in doc_templates.all_templates():
            _, without = pdf_text(company, template, deal, owner)
            _, with_images = pdf_text(company, template, deal, owner, image_url=lambda name: f"dealdocs:{name}")
            assert not without.pages[0].images
            assert len(with_images.pages[0].images) >= 1  # the logo in the header of every page
            assert sum(len(page.images) for page in with_images.pages) >= len(with_images.pages) + 2, template.name


def test_a_deal_without_company_contact_or_lines_still_reads_well(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        bare = crm.create(Entity.DEAL, {"title": "Consulting", "amount": "1500", "currency": "USD"}, owner)
        for template in doc_templates.all_templates():
            text, _ = pdf_text(company, template, bare, owner)
            assert NUMBER in text and "Consulting" in text, template.name
            assert plain(format_currency(Decimal("1500"), "USD", locale=template.language)) in text, template.name
            assert "None" not in text and " , " not in text and "()" not in text, (template.name, text)


def test_each_company_has_its_own_copies_and_its_own_requisites(app, make_tenant):
    a, b = make_tenant(name="Alpha"), make_tenant(name="Beta")
    with acting_as(app, a) as owner_a:
        save_requisites(owner_a, {"legal_name": "Alpha Trading LLC", "bank_account": "GB33BUKB20201555555555"})
        invoice = next(t for t in doc_templates.all_templates() if (t.document_type, t.language) == ("invoice", "en"))
        doc_templates.update(owner_a, invoice.id, {"body_html": "<p>Alpha pays {{ number }}</p>"})
    with acting_as(app, b) as owner_b:
        save_requisites(owner_b, {"legal_name": "Beta Works LLC"})
        templates = doc_templates.all_templates()
        assert len(templates) == 10
        invoice = next(t for t in templates if (t.document_type, t.language) == ("invoice", "en"))
        assert "Alpha" not in invoice.body_html and invoice.version == 1
        deal = crm.create(Entity.DEAL, {"title": "Beta deal", "amount": "10", "currency": "USD"}, owner_b)
        text, _ = pdf_text(b, invoice, deal, owner_b)
        assert "Beta Works LLC" in text
        assert "Alpha" not in text and "GB33BUKB20201555555555" not in text

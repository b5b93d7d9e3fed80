"""Import of CSV/XLSX files and export of filtered lists, through the pages.

Files are made here (no data files in the repository); jobs run in a real RQ worker.
"""
import csv
import html
import io
import re
from datetime import date

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from saas.crm import admin, services
from saas.crm.models import Company, Contact, Deal, Entity, ImportJob
from tenants.db import db

from .conftest import csrf_token, sign_in
from .crm_helpers import acting_as, add_person, set_rule


# --- helpers -------------------------------------------------------------------------------

def csv_bytes(rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode(encoding)


def upload(client, plural: str, filename: str, content: bytes):
    page = client.get(f"/{plural}/import")
    assert page.status_code == 200
    return client.post(f"/{plural}/import", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "file": (io.BytesIO(content), filename)})


def uploaded(client, plural: str, filename: str, content: bytes) -> int:
    response = upload(client, plural, filename, content)
    assert response.status_code == 302, text_of(response)[:2000]
    return int(re.fullmatch(r"/imports/(\d+)", response.headers["Location"]).group(1))


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def chosen_fields(page_html: str) -> dict[str, str]:
    """column-<n> → the field pre-selected for it ("" when skipped)."""
    chosen = {}
    for name, options in re.findall(r'<select name="(column-\d+)"[^>]*>(.*?)</select>', page_html, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', options)
        chosen[name] = selected.group(1) if selected else ""
    return chosen


def mapping_by_header(page_html: str) -> dict[str, str]:
    headers = re.findall(r"<tr>\s*<td>([^<]*)</td>\s*<td class=\"muted\">", page_html)
    fields = chosen_fields(page_html)
    return {html.unescape(header): fields[f"column-{index}"] for index, header in enumerate(headers)}


def preview_rows(page_html: str) -> dict[int, str]:
    """Preview row number → the text of its "What happens" cell."""
    body = page_html.split('class="table import-preview"', 1)[1]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows[int(cells[0])] = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cells[-1])).split())
    return rows


def start_import(client, import_id: int, policy: str = "skip", **changes) -> None:
    page = client.get(f"/imports/{import_id}")
    fields = {**chosen_fields(page.get_data(as_text=True)), **changes}
    response = client.post(f"/imports/{import_id}", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "on_duplicate": policy, "action": "start", **fields})
    assert response.status_code == 302, text_of(response)[:2000]


def state(client, import_id: int) -> dict:
    response = client.get(f"/imports/{import_id}.json")
    assert response.status_code == 200
    return response.get_json()


def counts(client, import_id: int) -> tuple:
    found = state(client, import_id)
    return found["status"], found["created"], found["merged"], found["skipped"], found["rejected"]


def rejected_report(client, import_id: int) -> dict[int, str]:
    response = client.get(f"/imports/{import_id}/rejected.csv")
    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    return {int(row): reasons for row, reasons in lines[1:]}


def exported(client, url: str) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200, text_of(response)[:1000]
    assert "attachment; filename=" in response.headers["Content-Disposition"]
    body = response.get_data()
    if url.split("?")[0].endswith(".xlsx"):
        sheet = load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
        lines = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    else:
        assert body.startswith("\ufeff".encode())  # Excel reads UTF-8 only with the BOM
        lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    return [dict(zip(lines[0], line)) for line in lines[1:]]


def count_of(app, company, model) -> int:
    with acting_as(app, company):
        return db.session.scalar(select(func.count()).select_from(model).where(model.deleted_at.is_(None)))


# --- 1,000 companies with duplicates and bad rows ------------------------------------------

EXISTING = 20
EXISTING_DUPS = [1, *range(11, 1000, 50)][:EXISTING]  # rows repeating an existing company's TIN
FILE_DUPS = [3, *range(23, 1000, 25)][:30]  # rows repeating the row before them by phone, written another way
BAD_PHONES = [4, *range(31, 1000, 50)][:10]
NO_NAMES = [6, *range(37, 1000, 50)][:5]
BAD_TINS = [8, *range(41, 1000, 50)][:5]
REJECTED = len(BAD_PHONES) + len(NO_NAMES) + len(BAD_TINS)


def phone_digits(n: int) -> str:
    digits = f"{n:07d}"
    return f"912 {digits[:3]}-{digits[3:5]}-{digits[5:]}"


def companies_csv() -> bytes:
    rows = [["Name", "TIN", "Phone", "E-mail", "Address"]]
    for n in range(1000):
        row = [f"Company {n}", str(7700000000 + n), f"+7 {phone_digits(n)}", f"info{n}@example.com", f"Street {n}"]
        if n in EXISTING_DUPS:
            row[1] = f"78 0000 {EXISTING_DUPS.index(n):04d}"  # the TIN of an existing company, spaced
        if n in FILE_DUPS:
            row[1] = ""
            row[2] = "8 (" + phone_digits(n - 1).replace(" ", ") ", 1)  # "8 (912) 000-00-02" = row before's
        if n in BAD_PHONES:
            row[2] = "12"
        if n in NO_NAMES:
            row[0] = ""
        if n in BAD_TINS:
            row[1] = "123"
        rows.append(row)
    return csv_bytes(rows)


def row_number(n: int) -> int:
    return n + 2  # the header is row 1


def existing_companies(app, company) -> list[int]:
    with acting_as(app, company) as owner:
        return [services.create(Entity.COMPANY, {"name": f"Existing {i}", "tin": f"78000{i:05d}"}, owner).id
                for i in range(EXISTING)]


def test_a_thousand_companies_with_duplicates_skipped(app, make_tenant, run_jobs):
    company = make_tenant()
    existing = existing_companies(app, company)
    client = sign_in(app, company)
    import_id = uploaded(client, "companies", "companies.csv", companies_csv())

    page = client.get(f"/imports/{import_id}")
    body = text_of(page)
    assert "1000 rows to import" in body
    assert mapping_by_header(page.get_data(as_text=True)) == {
        "Name": "name", "TIN": "tin", "Phone": "phones", "E-mail": "emails", "Address": "address"}
    preview = preview_rows(page.get_data(as_text=True))
    assert sorted(preview) == list(range(2, 12))
    assert preview[row_number(0)] == "Will be created"
    assert preview[row_number(1)] == f"Will be skipped duplicate of #{existing[0]}"
    assert preview[row_number(3)] == f"Will be skipped duplicate of row {row_number(2)}"
    assert preview[row_number(4)] == "Will be rejected Phone: “12” is not a phone number."
    assert preview[row_number(6)] == "Will be rejected Name: Required."
    assert preview[row_number(8)] == "Will be rejected TIN: A TIN has 10 or 12 digits."
    assert count_of(app, company, Company) == EXISTING  # the preview keeps nothing

    start_import(client, import_id, "skip")
    assert state(client, import_id)["status"] == "queued"
    assert "import-progress" in text_of(client.get(f"/imports/{import_id}"))  # the progress bar, polling
    run_jobs()

    assert counts(client, import_id) == ("done", 1000 - EXISTING - len(FILE_DUPS) - REJECTED, 0, EXISTING + len(FILE_DUPS), REJECTED)
    assert state(client, import_id)["processed"] == 1000
    report = rejected_report(client, import_id)
    assert sorted(report) == sorted(row_number(n) for n in BAD_PHONES + NO_NAMES + BAD_TINS)
    assert report[row_number(31)] == "Phone: “12” is not a phone number."
    assert report[row_number(37)] == "Name: Required."
    assert report[row_number(41)] == "TIN: A TIN has 10 or 12 digits."
    page = text_of(client.get(f"/imports/{import_id}"))
    assert "Rejected rows" in page and "Phone: “12” is not a phone number." in page
    earlier = text_of(client.get("/companies/import"))
    assert "Earlier imports" in earlier and "companies.csv" in earlier and "Done" in earlier
    assert count_of(app, company, Company) == EXISTING + 1000 - EXISTING - len(FILE_DUPS) - REJECTED
    with acting_as(app, company):
        job = db.session.get(ImportJob, import_id)
        assert job.content is None  # the file is dropped once imported
        assert db.session.scalar(select(Company.phones).where(Company.name == "Company 22")) == ["+79120000022"]
        assert db.session.scalar(select(Company.phones).where(Company.id == existing[0])) == []  # skipped


def test_a_thousand_companies_with_duplicates_merged(app, make_tenant, run_jobs):
    company = make_tenant()
    existing = existing_companies(app, company)
    client = sign_in(app, company)
    import_id = uploaded(client, "companies", "companies.csv", companies_csv())
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    client.post(f"/imports/{import_id}", data={"csrf_token": csrf_token(page), "on_duplicate": "merge",
                                               "action": "preview", **chosen_fields(page)})
    preview = preview_rows(client.get(f"/imports/{import_id}").get_data(as_text=True))
    assert preview[row_number(1)] == f"Will be merged duplicate of #{existing[0]}"
    assert preview[row_number(3)] == f"Will be merged duplicate of row {row_number(2)}"
    start_import(client, import_id, "merge")
    run_jobs()

    assert counts(client, import_id) == ("done", 1000 - EXISTING - len(FILE_DUPS) - REJECTED, EXISTING + len(FILE_DUPS), 0, REJECTED)
    with acting_as(app, company):
        merged = db.session.get(Company, existing[0])
        assert (merged.name, merged.phones, merged.emails, merged.address) == (
            "Existing 0", ["+79120000001"], ["info1@example.com"], "Street 1")  # empty fields filled, name kept
        twice = db.session.scalar(select(Company).where(Company.name == "Company 22"))
        assert twice.phones == ["+79120000022"] and twice.emails == ["info22@example.com", "info23@example.com"]
        assert db.session.scalar(select(func.count()).select_from(Company)) == 1000 - len(FILE_DUPS) - REJECTED


# --- other files ---------------------------------------------------------------------------

def test_xlsx_contacts_with_typed_cells_and_linked_companies(app, make_tenant, run_jobs):
    company = make_tenant(name="Xlsx")
    with acting_as(app, company) as owner:
        romashka = services.create(Entity.COMPANY, {"name": "Romashka", "tin": "7701234567"}, owner).id
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["First name", "Last name", "Mobile", "Email", "Company", "Birthday", "Responsible"])
    sheet.append(["Ivan", "Petrov", 89123456780, "IVAN@example.com", "Romashka", date(1980, 5, 17), "Xlsx Owner"])
    sheet.append(["Olga", "Sidorova", "+7 912 345-67-81", "olga@example.com", "7701234567", None, None])
    sheet.append(["Pavel", None, "12", None, "No such company", "not a date", "Nobody"])
    content = io.BytesIO()
    workbook.save(content)
    client = sign_in(app, company)
    import_id = uploaded(client, "contacts", "people.xlsx", content.getvalue())
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert mapping_by_header(page) == {
        "First name": "first_name", "Last name": "last_name", "Mobile": "phones", "Email": "emails",
        "Company": "company_ids", "Birthday": "birthday", "Responsible": "responsible_id"}
    start_import(client, import_id)
    run_jobs()

    assert counts(client, import_id) == ("done", 2, 0, 0, 1)
    reasons = rejected_report(client, import_id)[4]
    for expected in ("Mobile: “12” is not a phone number.", "Company: There is no company “No such company”.",
                     "Birthday: Enter a date", "Responsible: “Nobody” is not an active employee"):
        assert expected in reasons
    with acting_as(app, company):
        ivan = db.session.scalar(select(Contact).where(Contact.first_name == "Ivan"))
        assert (ivan.phones, ivan.emails, ivan.birthday) == (["+79123456780"], ["ivan@example.com"], date(1980, 5, 17))
        assert services.company_ids_of(ivan.id) == [romashka]
        olga = db.session.scalar(select(Contact).where(Contact.first_name == "Olga"))
        assert services.company_ids_of(olga.id) == [romashka]  # found by its TIN


def test_russian_headers_in_a_windows_1251_csv(app, make_tenant, run_jobs):
    company = make_tenant()
    content = csv_bytes([["Название", "ИНН", "Телефон", "Почта", "Адрес", "Прочее"],
                         ["ООО «Ромашка»", "7701234567", "8 (912) 345-67-89", "info@romashka.ru", "Москва", "x"],
                         ["ИП Иванов", "770123456789", "+7 912 345-67-80", "", "Казань", "y"],
                         ["Без ИНН", "", "", "", "", ""],
                         ["Плохой ИНН", "123", "", "", "", ""]],  # no duplicate of the one without a TIN
                        delimiter=";", encoding="cp1251")
    client = sign_in(app, company)
    import_id = uploaded(client, "companies", "компании.csv", content)
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert mapping_by_header(page) == {"Название": "name", "ИНН": "tin", "Телефон": "phones", "Почта": "emails",
                                       "Адрес": "address", "Прочее": ""}
    assert "ООО «Ромашка»" in html.unescape(page)
    start_import(client, import_id)
    run_jobs()
    assert counts(client, import_id) == ("done", 3, 0, 0, 1)
    assert rejected_report(client, import_id) == {5: "ИНН: A TIN has 10 or 12 digits."}
    with acting_as(app, company):
        romashka = db.session.scalar(select(Company).where(Company.tin == "7701234567"))
        assert (romashka.name, romashka.phones, romashka.address) == ("ООО «Ромашка»", ["+79123456789"], "Москва")


def test_leads_repeat_by_their_single_email_or_phone(app, make_tenant, run_jobs):
    company = make_tenant()
    with acting_as(app, company) as owner:
        known = services.create(Entity.LEAD, {"title": "Known", "email": "lead@example.com"}, owner).id
    content = csv_bytes([["Title", "E-mail", "Телефон", "Company"],
                         ["Again", "LEAD@example.com", "", "Romashka"],
                         ["New one", "b@example.com", "+7 912 111-22-33", ""],
                         ["New one, again", "", "8 912 111 22 33", ""]])
    client = sign_in(app, company)
    import_id = uploaded(client, "leads", "leads.csv", content)
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert mapping_by_header(page) == {"Title": "title", "E-mail": "email", "Телефон": "phone",
                                       "Company": "company_name"}
    assert preview_rows(page) == {2: f"Will be skipped duplicate of #{known}", 3: "Will be created",
                                  4: "Will be skipped duplicate of row 3"}
    start_import(client, import_id)
    run_jobs()
    assert counts(client, import_id) == ("done", 1, 0, 2, 0)


def test_files_that_cannot_be_imported_are_refused_with_a_reason(app, make_tenant):
    from saas.crm.imports import MAX_BYTES

    company = make_tenant()
    client = sign_in(app, company)
    for filename, content, message in [
        ("contract.pdf", b"%PDF-1.4", "Upload a .csv or .xlsx file (“contract.pdf” is neither)."),
        ("empty.csv", b"", "The file is empty."),
        ("blank.csv", b"\xef\xbb\xbf\r\n ,, \r\n", "The file is empty."),
        ("header.csv", b"Name,TIN\r\n", "The file has a header row but no data rows."),
        ("broken.xlsx", b"not a workbook", "The file could not be read as an Excel workbook (.xlsx)."),
        ("big.csv", b"Name\r\n" + b"x" * MAX_BYTES, "The file is larger than 20 MB."),
        ("huge.csv", b"Name\r\n" + b"x" * (MAX_BYTES + 100_000), "The file is larger than 20 MB."),
    ]:
        response = upload(client, "companies", filename, content)
        assert response.status_code == 422, filename
        assert message in text_of(response), filename
    response = client.post("/companies/import", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(client.get("/companies/import").get_data(as_text=True))})
    assert "Choose a file to upload." in text_of(response)
    assert count_of(app, company, Company) == 0
    with acting_as(app, company):
        assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 0


# --- export --------------------------------------------------------------------------------

def deals_with_segments(app, company) -> dict:
    with acting_as(app, company) as owner:
        segment = admin.create_custom_field(owner, Entity.DEAL, label="Segment", type="list",
                                            items=["Retail", "Wholesale"], key="segment")
        retail = segment.options["items"][0]["id"]
        wholesale = segment.options["items"][1]["id"]
        romashka = services.create(Entity.COMPANY, {"name": "Romashka"}, owner).id
        titles = {}
        for n, chosen in enumerate([retail, wholesale, retail, retail, wholesale]):
            deal = services.create(Entity.DEAL, {"title": f"Deal {n}", "amount": f"{1000 + n}.50", "company_id": romashka,
                                                 "close_date": "2026-12-31", "custom": {"segment": chosen}}, owner)
            titles[deal.id] = deal.title
        return {"retail": retail, "titles": titles}


def test_export_of_a_filtered_deal_list_and_its_reimport_finds_only_duplicates(app, make_tenant, run_jobs):
    company = make_tenant()
    made = deals_with_segments(app, company)
    client = sign_in(app, company)
    query = f"custom.segment={made['retail']}&sort=title"
    lines = exported(client, f"/deals/export.csv?{query}")
    assert [line["Title"] for line in lines] == ["Deal 0", "Deal 2", "Deal 3"]
    first = lines[0]
    assert (first["Amount"], first["Currency"], first["Pipeline"], first["Stage"], first["Company"],
            first["Expected close date"], first["Segment"], first["Responsible"]) == (
        "1000.50", "RUB", "Sales", "New", "Romashka", "2026-12-31", "Retail", f"{company.name} Owner")
    assert {int(line["ID"]) for line in lines} == {i for i, t in made["titles"].items() if t in ("Deal 0", "Deal 2", "Deal 3")}
    response = client.get(f"/deals/export.csv?{query}")
    response.close()  # a download stopped early ends its database work too
    assert response.headers["Content-Disposition"].startswith('attachment; filename="deals-')
    assert exported(client, f"/deals/export.xlsx?{query}") == lines

    csv_file = client.get(f"/deals/export.csv?{query}").get_data()
    import_id = uploaded(client, "deals", "deals.csv", csv_file)
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    mapping = mapping_by_header(page)
    assert (mapping["ID"], mapping["Title"], mapping["Stage"], mapping["Segment"]) == (
        "id", "title", "stage_id", "custom.segment")
    assert all("duplicate of #" in outcome for outcome in preview_rows(page).values())
    start_import(client, import_id)
    run_jobs()
    assert counts(client, import_id) == ("done", 0, 0, 3, 0)
    assert count_of(app, company, Deal) == 5

    # The same file as a new set of deals ("create anyway") reads back every value it wrote.
    import_id = uploaded(client, "deals", "deals.csv", csv_file)
    start_import(client, import_id, "create")
    run_jobs()
    assert counts(client, import_id) == ("done", 3, 0, 0, 0)
    again = exported(client, f"/deals/export.csv?{query}")
    assert sorted((line["Title"], line["Amount"], line["Stage"], line["Company"], line["Segment"]) for line in again) == \
        sorted((line["Title"], line["Amount"], line["Stage"], line["Company"], line["Segment"]) for line in lines * 2)


def test_a_filter_the_list_cannot_read_is_refused_not_ignored(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    response = client.get("/deals/export.csv?custom.nope=1")
    assert response.status_code == 302 and response.headers["Location"] == "/deals"


def test_a_member_who_sees_only_their_own_exports_only_theirs(app, make_tenant):
    company = make_tenant()
    member = add_person(app, company, "member")
    set_rule(app, company, "member", Entity.COMPANY, "own")
    with acting_as(app, company) as owner:
        for n in range(3):
            services.create(Entity.COMPANY, {"name": f"Owner's {n}"}, owner)
        for n in range(2):
            services.create(Entity.COMPANY, {"name": f"Member's {n}", "responsible_id": member.user_id}, owner)
    client = sign_in(app, company, member.email, member.password)
    for extension in ("csv", "xlsx"):
        assert sorted(line["Company name"] for line in exported(client, f"/companies/export.{extension}")) == [
            "Member's 0", "Member's 1"]


def test_a_formula_in_a_cell_is_exported_harmless_and_imported_back_as_text(app, make_tenant, run_jobs):
    company = make_tenant()
    with acting_as(app, company) as owner:
        services.create(Entity.COMPANY, {"name": "=HYPERLINK(\"http://evil\")", "phones": "+7 912 345-67-89"}, owner)
    client = sign_in(app, company)
    line = exported(client, "/companies/export.csv")[0]
    assert line["Company name"] == "'=HYPERLINK(\"http://evil\")" and line["Phones"] == "+79123456789"
    sheet = load_workbook(io.BytesIO(client.get("/companies/export.xlsx").get_data())).worksheets[0]
    assert sheet["A2"].data_type == "s"
    import_id = uploaded(client, "companies", "c.csv", client.get("/companies/export.csv").get_data())
    start_import(client, import_id, "create")
    run_jobs()
    with acting_as(app, company):
        assert db.session.scalars(select(Company.name)).all() == ['=HYPERLINK("http://evil")'] * 2


# --- people and tenants --------------------------------------------------------------------

def test_a_job_whose_person_was_deactivated_fails_with_the_reason_and_can_be_retried(app, make_tenant, run_jobs):
    company = make_tenant()
    member = add_person(app, company, "member", name="Pavel Member")
    member_client = sign_in(app, company, member.email, member.password)
    import_id = uploaded(member_client, "companies", "c.csv", csv_bytes([["Name"], ["Alpha"], ["Beta"]]))
    start_import(member_client, import_id)

    owner = sign_in(app, company)
    people = owner.get("/people").get_data(as_text=True)
    owner.post(f"/people/{member.membership_id}/deactivate", data={"csrf_token": csrf_token(people)})
    run_jobs()

    assert counts(owner, import_id) == ("failed", 0, 0, 0, 0)
    page = text_of(owner.get(f"/imports/{import_id}"))
    assert "Pavel Member, who started this import, no longer has access to the company." in page
    assert count_of(app, company, Company) == 0
    with acting_as(app, company):
        assert db.session.get(ImportJob, import_id).content is not None  # kept for another try

    retry = owner.post(f"/imports/{import_id}/retry", data={"csrf_token": csrf_token(
        owner.get(f"/imports/{import_id}").get_data(as_text=True))})
    assert retry.status_code == 302
    run_jobs()
    assert counts(owner, import_id) == ("done", 2, 0, 0, 0)
    with acting_as(app, company):
        assert set(db.session.scalars(select(Company.responsible_id))) == {company.owner_id}


def test_imports_and_exports_stay_in_their_own_company(app, make_tenant, run_jobs):
    a, b = make_tenant(name="Alpha"), make_tenant(name="Beta")
    client_a, client_b = sign_in(app, a), sign_in(app, b)
    b_import = uploaded(client_b, "companies", "b.csv", csv_bytes([["Name", "TIN"], ["Beta secret", "7701234567"]]))
    start_import(client_b, b_import)
    run_jobs()
    assert counts(client_b, b_import) == ("done", 1, 0, 0, 0)
    assert count_of(app, a, Company) == 0  # B's job ran in B's schema only

    for path in (f"/imports/{b_import}", f"/imports/{b_import}.json", f"/imports/{b_import}/rejected.csv"):
        assert client_a.get(path).status_code == 404, path
    assert client_a.post(f"/imports/{b_import}/retry", data={"csrf_token": csrf_token(
        client_a.get("/companies/import").get_data(as_text=True))}).status_code == 404

    a_import = uploaded(client_a, "companies", "a.csv", csv_bytes([["Name", "TIN"], ["Alpha own", "7701234567"]]))
    preview = preview_rows(client_a.get(f"/imports/{a_import}").get_data(as_text=True))
    assert preview[2] == "Will be created"  # B's company with the same TIN is no duplicate here
    for extension in ("csv", "xlsx"):
        names = [line["Company name"] for line in exported(client_a, f"/companies/export.{extension}")]
        assert "Beta secret" not in names

    # A member only sees their own imports; the owner sees everyone's.
    member = add_person(app, a, "member")
    member_client = sign_in(app, a, member.email, member.password)
    assert member_client.get(f"/imports/{a_import}").status_code == 404


def test_a_value_too_long_for_its_column_rejects_its_row_only(app, make_tenant, run_jobs):
    company = make_tenant()
    rows = [["First name", "Position"]] + [[f"Person {n}", "Engineer"] for n in range(450)]
    rows[301] = ["X" * 250, "Engineer"]
    rows[302] = ["Nul\x00l", "P" * 201]
    client = sign_in(app, company)
    import_id = uploaded(client, "contacts", "people\x00.csv", csv_bytes(rows))
    start_import(client, import_id)
    run_jobs()
    assert counts(client, import_id) == ("done", 448, 0, 0, 2)
    assert set(rejected_report(client, import_id)) == {302, 303}

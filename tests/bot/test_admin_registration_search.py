"""Registration search, paging, CSV export and check-in by id in the admin API."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import openpyxl
import pytest

from bot.admin.export import UTF8_BOM
from models.redact import hash_openid
from tests.organizer_factories import add_registration

URL = "/admin/api/events/meetup-10/registrations"


@pytest.fixture
def people(admin_app, clock):
    """Capacity 3: alice, bob (checked in), eve confirmed; carol waitlisted; dave cancelled."""
    now = clock.now()
    rows = [
        ("o-alice", dict(name="王小丽", phone="13812345678", company="字节跳动")),
        ("o-bob", dict(name="李雷", phone="13900001111", company="Intel", checked_in=True)),
        ("o-eve", dict(name="=HYPERLINK(\"http://evil\")", phone="13700009999", company="@公司 🚀")),
        ("o-carol", dict(name="韩梅梅", phone="13700002222", company="火山引擎")),
        ("o-dave", dict(name="赵四", phone="13600003333", company="100%_科技", cancelled=True)),
    ]
    with admin_app.state.services.sessions.begin() as session:
        made = {openid: add_registration(session, openid, now=now, capacity=3, **fields) for openid, fields in rows}
        return {openid: (registration.id, registration.checkin_code) for openid, registration in made.items()}


OPENIDS = ("o-alice", "o-bob", "o-eve", "o-carol", "o-dave")
# The API shows each follower as their hashed openid only.
BY_HASH = {hash_openid(openid): openid for openid in OPENIDS}


def openids(response) -> list[str]:
    return [BY_HASH[item["openid_hash"]] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, list(OPENIDS)),
        ({"q": "王小"}, ["o-alice"]),
        ({"q": "intel"}, ["o-bob"]),
        ({"q": "2222"}, ["o-carol"]),
        ({"q": "+86 139-0000-1111"}, ["o-bob"]),
        ({"q": "%"}, ["o-dave"]),  # a literal percent sign, not a wildcard
        ({"q": "_"}, ["o-dave"]),
        ({"q": "12"}, []),  # too few digits to be a phone suffix
        ({"status": "confirmed"}, ["o-alice", "o-bob", "o-eve"]),
        ({"status": "waitlisted"}, ["o-carol"]),
        ({"status": "cancelled"}, ["o-dave"]),
        ({"checked_in": "true"}, ["o-bob"]),
        ({"status": "confirmed", "checked_in": "false"}, ["o-alice", "o-eve"]),
    ],
)
def test_search_and_filters(admin_api, people, params, expected):
    response = admin_api.get(URL, params=params)
    assert response.status_code == 200
    assert openids(response) == expected
    assert response.json()["total"] == len(expected)


def test_search_by_code_in_any_case(admin_api, people):
    _, code = people["o-carol"]
    assert openids(admin_api.get(URL, params={"q": code.lower()})) == ["o-carol"]


def test_pages_keep_the_total(admin_api, people):
    first = admin_api.get(URL, params={"page": 1, "page_size": 2})
    third = admin_api.get(URL, params={"page": 3, "page_size": 2})
    assert openids(first) == ["o-alice", "o-bob"]
    assert openids(third) == ["o-dave"]
    assert first.json()["total"] == third.json()["total"] == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "maybe"}, "status"),
        ({"checked_in": "perhaps"}, "checked_in"),
        ({"page": 0}, "page"),
        ({"page_size": 501}, "page_size"),
        ({"q": "x" * 65}, "q"),
    ],
)
def test_invalid_filters_are_422_naming_the_field(admin_api, params, field):
    response = admin_api.get(URL, params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", field]


def test_raw_csv_round_trip_keeps_text_and_defuses_formulas(admin_api, people):
    response = admin_api.get(f"{URL}.csv", params={"raw": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="registrations-meetup-10.csv"' in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8").removeprefix(UTF8_BOM))))
    by_openid = {BY_HASH[row["openid_hash"]]: row for row in rows}
    assert list(by_openid) == list(OPENIDS)
    assert by_openid["o-alice"]["name"] == "王小丽" and by_openid["o-alice"]["phone"] == "13812345678"
    assert by_openid["o-eve"]["name"] == "'=HYPERLINK(\"http://evil\")"
    assert by_openid["o-eve"]["company"] == "'@公司 🚀"
    assert by_openid["o-carol"]["status"] == "waitlisted" and by_openid["o-carol"]["position"] == "1"
    assert by_openid["o-bob"]["checked_in_at"].endswith("+08:00")
    assert by_openid["o-alice"]["checked_in_at"] == ""


def test_csv_is_chinese_by_default_with_readable_local_times(admin_api, people):
    response = admin_api.get(f"{URL}.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8").removeprefix(UTF8_BOM))))
    assert list(rows[0]) == [
        "编号", "状态", "候补位次", "姓名", "手机号", "公司/单位", "职位", "参加方式", "现场补登", "签到码", "渠道",
        "报名时间", "签到时间", "用户标识（脱敏）",
    ]
    by_name = {row["姓名"]: row for row in rows}
    assert (by_name["韩梅梅"]["状态"], by_name["韩梅梅"]["候补位次"]) == ("候补", "1")
    assert (by_name["王小丽"]["状态"], by_name["王小丽"]["参加方式"]) == ("已确认", "现场")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", by_name["李雷"]["签到时间"])
    assert by_name["王小丽"]["签到时间"] == ""


def test_xlsx_has_a_header_row_text_cells_and_column_widths(admin_api, people):
    response = admin_api.get(f"{URL}.xlsx", params={"status": "confirmed"})
    assert response.status_code == 200
    assert 'filename="registrations-meetup-10.xlsx"' in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    header = [cell.value for cell in sheet[1]]
    assert header[:4] == ["编号", "状态", "候补位次", "姓名"] and sheet.freeze_panes == "A2"
    names = [row[3] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "王小丽" in names and '=HYPERLINK("http://evil")' in names  # text, not a formula
    assert all(cell.data_type == "s" for cell in sheet["D"][1:])
    assert sheet.column_dimensions["D"].width > sheet.column_dimensions["A"].width


def test_csv_applies_the_same_filters(admin_api, people):
    response = admin_api.get(f"{URL}.csv", params={"status": "waitlisted"})
    lines = response.content.decode("utf-8").removeprefix(UTF8_BOM).splitlines()
    assert len(lines) == 2 and "韩梅梅" in lines[1]


def test_unknown_event_is_404_for_csv_and_checkin(admin_api):
    assert admin_api.get("/admin/api/events/nope/registrations.csv").status_code == 404
    assert admin_api.post("/admin/api/events/nope/registrations/1/checkin").status_code == 404


def test_checkin_by_id(admin_api, people, clock):
    registration_id, code = people["o-alice"]
    response = admin_api.post(f"{URL}/{registration_id}/checkin")
    assert response.status_code == 200
    assert response.json()["checkin_code"] == code
    assert datetime.fromisoformat(response.json()["checked_in_at"]) == clock.now()
    assert openids(admin_api.get(URL, params={"checked_in": "true"})) == ["o-alice", "o-bob"]


def test_checkin_by_id_errors(admin_api, people):
    carol, _ = people["o-carol"]
    dave, _ = people["o-dave"]
    assert admin_api.post(f"{URL}/{carol}/checkin").status_code == 409
    assert admin_api.post(f"{URL}/{dave}/checkin").status_code == 409
    assert admin_api.post(f"{URL}/999999/checkin").status_code == 404
    wrong_type = admin_api.post(f"{URL}/abc/checkin")
    assert wrong_type.status_code == 422 and wrong_type.json()["errors"][0]["loc"] == ["path", "registration_id"]

"""The admin side of personal data: phones masked in the list, named admin tokens, and an audit row for
every phone revealed and every CSV or .xlsx exported (API and CLI), listed by ``GET /admin/api/audit``."""

from __future__ import annotations

import io

import openpyxl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app as cli
from models.content import ConfigError
from models.redact import hash_openid
from tests.conftest import BEFORE_EVENT, REPO_ROOT
from tests.organizer_factories import add_registration

URL = "/admin/api/events/meetup-10/registrations"
ALICE = {"Authorization": "Bearer token-of-alice"}
BOB = {"Authorization": "Bearer token-of-bob"}


@pytest.fixture
def named_app(make_app, make_settings):
    """Two named admin tokens, and two registrations."""
    app = make_app(make_settings(admin_tokens_raw="alice:token-of-alice, bob:token-of-bob"))
    with app.state.services.sessions.begin() as session:
        for openid, phone in (("o-one", "13812345678"), ("o-two", "13900001111")):
            add_registration(session, openid, now=BEFORE_EVENT, phone=phone)
    return app


@pytest.fixture
def named_api(named_app):
    with TestClient(named_app) as client:
        yield client


def audit(client: TestClient) -> list[dict]:
    return client.get("/admin/api/audit", headers=ALICE).json()["items"]


def test_the_list_masks_every_phone_and_writes_no_audit_row(named_api):
    items = named_api.get(URL, headers=ALICE).json()["items"]

    assert [item["phone"] for item in items] == ["138****5678", "139****1111"]
    assert audit(named_api) == []


def xlsx_text(content: bytes) -> str:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return "\n".join(str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value is not None)


def test_no_list_or_export_shows_an_openid_only_its_hash(named_api):
    listed = named_api.get(URL, headers=ALICE)
    checked_in = named_api.post(f"{URL}/{listed.json()['items'][0]['id']}/checkin", headers=ALICE)
    documents = [
        listed.text,
        checked_in.text,
        named_api.get(f"{URL}.csv", headers=ALICE).text,
        named_api.get(f"{URL}.csv", params={"raw": "true"}, headers=ALICE).text,
        xlsx_text(named_api.get(f"{URL}.xlsx", headers=ALICE).content),
    ]

    assert [document for document in documents if "o-one" in document or "o-two" in document] == []
    assert [item["openid_hash"] for item in listed.json()["items"]] == [hash_openid("o-one"), hash_openid("o-two")]
    assert all(hash_openid("o-two") in document for document in documents[2:])


def test_revealing_a_phone_names_the_token_in_the_audit(named_api):
    second = named_api.get(URL, headers=ALICE).json()["items"][1]

    revealed = named_api.get(f"{URL}/{second['id']}/phone", headers=BOB).json()

    assert revealed == {"id": second["id"], "phone": "13900001111"}
    [entry] = audit(named_api)
    assert (entry["actor"], entry["action"], entry["event_id"], entry["registration_id"], entry["rows"]) == (
        "bob", "reveal_phone", "meetup-10", second["id"], 1,
    )
    assert entry["at"].startswith("2023-03-20T02:00:00")


def test_revealing_an_unknown_registration_is_404_and_not_audited(named_api):
    assert named_api.get(f"{URL}/9999/phone", headers=ALICE).status_code == 404
    assert audit(named_api) == []


def test_every_csv_export_has_its_audit_row_with_the_rows_exported(named_api):
    full = named_api.get(f"{URL}.csv", headers=ALICE)
    named_api.get(f"{URL}.csv", params={"q": "5678"}, headers=BOB)

    assert "13812345678" in full.text
    newest, oldest = audit(named_api)
    assert (oldest["actor"], oldest["action"], oldest["rows"]) == ("alice", "export_csv", 2)
    assert (newest["actor"], newest["action"], newest["rows"]) == ("bob", "export_csv", 1)


def test_every_xlsx_export_has_its_audit_row_with_the_rows_exported(named_api):
    named_api.get(f"{URL}.xlsx", params={"q": "1111"}, headers=ALICE)

    [entry] = audit(named_api)
    assert (entry["actor"], entry["action"], entry["event_id"], entry["rows"]) == ("alice", "export_xlsx", "meetup-10", 1)


def test_the_audit_needs_an_admin_token(named_api):
    assert named_api.get("/admin/api/audit").status_code == 401
    assert named_api.get("/admin/api/audit", headers={"Authorization": "Bearer token-of-carol"}).status_code == 401


def test_admin_token_still_works_and_is_named_admin(make_app, make_settings):
    app = make_app(make_settings(admin_token="single-token"))
    with TestClient(app, headers={"Authorization": "Bearer single-token"}) as client:
        client.get(f"{URL}.csv")
        assert [entry["actor"] for entry in client.get("/admin/api/audit").json()["items"]] == ["admin"]


def test_a_named_token_without_its_name_is_refused_at_start_up(make_settings):
    with pytest.raises(ConfigError, match="ADMIN_TOKENS"):
        make_settings(admin_tokens_raw="alice:token-of-alice,token-without-name")


def test_a_cli_export_is_audited_as_the_cli(named_api, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("EVENTBOT_NOW", BEFORE_EVENT.isoformat())

    result = CliRunner().invoke(cli, ["registrations", "export", "--csv", str(tmp_path / "out.csv"), "--raw"])

    assert result.exit_code == 0, result.output
    exported = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert "o-one" not in exported and hash_openid("o-one") in exported
    [entry] = audit(named_api)
    assert (entry["actor"], entry["action"], entry["rows"]) == ("cli", "export_csv", 2)


def test_a_cli_xlsx_export_is_audited_as_the_cli(named_api, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("EVENTBOT_NOW", BEFORE_EVENT.isoformat())

    result = CliRunner().invoke(cli, ["registrations", "export", "--xlsx", str(tmp_path / "out.xlsx")])

    assert result.exit_code == 0, result.output
    [entry] = audit(named_api)
    assert (entry["actor"], entry["action"], entry["rows"]) == ("cli", "export_xlsx", 2)

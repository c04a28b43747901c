"""The organizer's CLI commands, on the test database, through the same service as the admin API."""

import csv
import io

import openpyxl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.admin.export import UTF8_BOM
from bot.cli import app as cli
from models import Campaign, Delivery, Registration, organizer
from models.registration import ONLINE
from tests.conftest import BEFORE_EVENT, REPO_ROOT
from tests.organizer_factories import add_registration


@pytest.fixture(autouse=True)
def cli_environment(database_url, monkeypatch):
    """The CLI reads its configuration, database and clock from the environment: the test's, before the event."""
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("EVENTBOT_NOW", BEFORE_EVENT.isoformat())


@pytest.fixture
def seeded(sessions):
    with sessions.begin() as session:
        alice = add_registration(session, "o-alice", now=BEFORE_EVENT, name="=王小丽", phone="13812345678", capacity=1)
        add_registration(session, "o-bob", now=BEFORE_EVENT, name="李雷", phone="13900001111", capacity=1)
        return alice.checkin_code


def run(*arguments, input=None):
    result = CliRunner().invoke(cli, list(arguments), input=input)
    return result


def test_registrations_list_masks_phones_and_filters_by_status(seeded):
    result = run("registrations", "list")
    assert result.exit_code == 0, result.output
    assert "=王小丽" in result.output and "138****5678" in result.output and "13812345678" not in result.output
    waitlisted = run("registrations", "list", "--status", "waitlisted")
    assert "李雷" in waitlisted.output and "王小丽" not in waitlisted.output
    assert run("registrations", "list", "--status", "bogus").exit_code == 2


def test_registrations_export_writes_the_csv_file(seeded, tmp_path):
    target = tmp_path / "out.csv"
    result = run("registrations", "export", "--csv", str(target), "--raw")
    assert result.exit_code == 0, result.output
    document = target.read_text(encoding="utf-8")
    assert document.startswith(UTF8_BOM)
    rows = list(csv.DictReader(io.StringIO(document.removeprefix(UTF8_BOM))))
    assert [(row["name"], row["phone"], row["status"]) for row in rows] == [
        ("'=王小丽", "13812345678", "confirmed"),
        ("李雷", "13900001111", "waitlisted"),
    ]


def test_registrations_export_is_chinese_unless_raw_and_writes_xlsx(seeded, tmp_path):
    document = run("registrations", "export").output
    rows = list(csv.DictReader(io.StringIO(document.removeprefix(UTF8_BOM))))
    assert [(row["姓名"], row["状态"], row["参加方式"]) for row in rows] == [("'=王小丽", "已确认", "现场"), ("李雷", "候补", "现场")]
    target = tmp_path / "out.xlsx"
    assert run("registrations", "export", "--xlsx", str(target)).exit_code == 0
    sheet = openpyxl.load_workbook(target).active
    assert [row[3] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["=王小丽", "李雷"]


def test_stats_prints_the_counts(seeded):
    result = run("stats")
    assert result.exit_code == 0, result.output
    assert "on site 1/200 (199 seats left, 0 walk-ins), online 0, waitlisted 1, cancelled 0, checked in 0, today 2" in result.output


def test_checkin_by_code(seeded, sessions):
    assert "checked in" in run("checkin", seeded.lower()).output
    assert "already checked in" in run("checkin", seeded).output
    assert run("checkin", "NOPE99").exit_code == 1
    with sessions() as session:
        assert session.scalars(select(Registration.checked_in_at).where(Registration.openid == "o-alice")).one()


def test_checkin_of_an_online_registrant_warns_that_no_seat_was_kept(sessions):
    with sessions.begin() as session:
        code = add_registration(session, "o-olivia", now=BEFORE_EVENT, name="欧丽", attendance=ONLINE).checkin_code
    result = run("checkin", code)
    assert result.exit_code == 0, result.output
    assert result.output == f"{code} 欧丽: checked in\n注意：欧丽 报名的是线上观看，没有为其预留现场座位。\n"


def test_broadcast_asks_first_and_sends_nothing_when_declined(seeded, sessions):
    declined = run("broadcast", "明天见", "--audience", "confirmed", input="n\n")
    assert "1 recipients (confirmed, meetup-10), now" in declined.output
    assert declined.exit_code == 1
    with sessions() as session:
        assert session.scalars(select(Campaign)).all() == []


def test_broadcast_with_yes_queues_one_delivery_per_recipient(seeded, sessions):
    result = run("broadcast", "候补的朋友请留意", "--audience", "all_registrants", "--yes")
    assert result.exit_code == 0, result.output
    with sessions() as session:
        assert sorted(session.scalars(select(Delivery.openid))) == ["o-alice", "o-bob"]


def test_broadcast_at_a_local_time_is_scheduled_without_deliveries_until_then(seeded, sessions):
    result = run("broadcast", "开场提醒", "--audience", "confirmed", "--at", "2023-03-26T13:00:00", "--yes")
    assert result.exit_code == 0, result.output
    assert "scheduled; its recipients are the confirmed audience at that time" in result.output
    with sessions() as session:
        [campaign_id] = session.scalars(select(Campaign.id)).all()
        report = organizer.broadcast_status(session, campaign_id)
        assert session.scalars(select(Delivery)).all() == []
    assert (report.status, report.send_at.isoformat()) == ("scheduled", "2023-03-26T05:00:00+00:00")
    assert run("broadcast", "太迟了", "--audience", "confirmed", "--at", "2023-03-01T13:00:00", "--yes").exit_code == 2
    assert run("broadcast", "谁", "--audience", "everyone", "--yes").exit_code == 2

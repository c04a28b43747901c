"""Permanent QR tickets kept per account and scene: asked for once, the first answer kept."""

from __future__ import annotations

from models.qr_tickets import QrTicket, permanent_ticket


def never_called() -> tuple[str, str]:
    raise AssertionError("WeChat was asked again for a kept code")


def test_a_code_is_asked_for_once_per_account_and_scene(sessions):
    asked = []

    def create() -> tuple[str, str]:
        asked.append(1)
        return f"ticket-{len(asked)}", f"http://weixin.qq.com/q/{len(asked)}"

    first = permanent_ticket(sessions, "wx-app", "poster", create)
    assert (first.ticket, first.url) == ("ticket-1", "http://weixin.qq.com/q/1")
    assert permanent_ticket(sessions, "wx-app", "poster", never_called).ticket == "ticket-1"
    # Another account's codes are its own.
    assert permanent_ticket(sessions, "wx-other-app", "poster", create).ticket == "ticket-2"


def test_when_another_process_kept_its_code_first_that_one_stays(sessions):
    def create_while_another_process_keeps_its_own() -> tuple[str, str]:
        with sessions.begin() as session:
            session.add(QrTicket(app_id="wx-app", scene="poster", ticket="theirs", url="http://weixin.qq.com/q/theirs"))
        return "mine", "http://weixin.qq.com/q/mine"

    kept = permanent_ticket(sessions, "wx-app", "poster", create_while_another_process_keeps_its_own)
    assert (kept.ticket, kept.url) == ("theirs", "http://weixin.qq.com/q/theirs")
    assert permanent_ticket(sessions, "wx-app", "poster", never_called).ticket == "theirs"

"""``eventbot serve`` alone (2 uvicorn workers) sends due reminders, once, across a restart; ``--no-scheduler`` none.

Real processes on the test's database (SQLite file, or PostgreSQL + Redis), sending to the fake WeChat API.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from models.outbox import Campaign
from models.registration import ONSITE, register
from models.reminder import ReminderRun
from tests.conftest import REPO_ROOT, TOKEN
from tests.outbound import follower_wrote, outbound_environment
from tests.polling import wait_until
from tests.servers import free_port, wait_until_serving

pytestmark = pytest.mark.slow

EVENT_ID = "meetup-10"
REGISTRANTS = ("o-alice", "o-bob")
ADMIN_TOKEN = "serve-admin-token"
# The second reminder falls due five minutes after the first: a restart then has one reminder to send
# and one (already sent, still within its grace window) to leave alone.
SECOND_OFFSET = "1435m"


def config_with_reminders(directory: Path) -> Path:
    text, replaced = re.subn(
        r'^reminders = \["1d", "2h"\]', f'reminders = ["1d", "{SECOND_OFFSET}"]',
        (REPO_ROOT / "config.toml").read_text(encoding="utf-8"), count=1, flags=re.MULTILINE,
    )
    assert replaced == 1, "config.toml's event has the reminders line this test changes"
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def serve(settings, fake_wechat, tmp_path) -> Iterator:
    """Starts ``eventbot serve --workers 2`` (extra options passed on) with its clock at ``now``."""
    environment = outbound_environment(settings, fake_wechat, config_with_reminders(tmp_path))
    environment = {key: value for key, value in environment.items() if key != "EVENTBOT_RUN_SCHEDULER"}
    environment |= {"WECHAT_TOKEN": TOKEN, "ADMIN_TOKEN": ADMIN_TOKEN}
    running: list[subprocess.Popen] = []
    log = tmp_path / "serve.log"

    def start(now, *options: str) -> str:
        port = free_port()
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2", *options],
                env={**environment, "EVENTBOT_NOW": now.isoformat()},
                cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT,
            )
        running.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(process, url, log)
        return url

    def stop() -> None:
        process = running.pop()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    start.stop = stop
    yield start
    while running:
        stop()


@pytest.fixture
def registrants(sessions, fake_wechat, clock, settings):
    """Two confirmed on-site registrants who wrote to the account an hour before the day-before reminder."""
    event = settings.content.event_by_id(EVENT_ID)
    due = event.starts_at - timedelta(days=1)
    for openid in REGISTRANTS:
        with sessions.begin() as session:
            register(
                session, event_id=EVENT_ID, openid=openid, answers={"name": openid}, attendance=ONSITE,
                capacity=event.capacity, now=clock.now(),
            )
        follower_wrote(sessions, fake_wechat, openid, due - timedelta(hours=1))
    fake_wechat.set_now(due)
    return due


def test_serve_alone_reminds_each_registrant_once_and_not_again_after_a_restart(
    serve, registrants, fake_wechat, sessions
):
    due = registrants
    serve(due)
    wait_until(lambda: len(fake_wechat.messages()) >= len(REGISTRANTS), timeout=60, what="serve to send the reminder")
    serve.stop()

    serve(due + timedelta(minutes=5))
    wait_until(lambda: len(fake_wechat.messages()) >= 2 * len(REGISTRANTS), timeout=60, what="the restarted serve to send the next reminder")

    messages = fake_wechat.messages()
    assert Counter(message["touser"] for message in messages) == {openid: 2 for openid in REGISTRANTS}
    texts = {openid: {m["body"]["text"]["content"] for m in messages if m["touser"] == openid} for openid in REGISTRANTS}
    assert all(len(received) == 2 for received in texts.values()), "one message per reminder, not one twice"
    with sessions() as session:
        assert set(session.scalars(select(ReminderRun.offset_text))) == {"1d", SECOND_OFFSET}
        assert session.scalar(select(func.count()).select_from(Campaign)) == 2


def test_serve_without_scheduler_sends_the_outbox_but_no_reminder(serve, registrants, fake_wechat, sessions):
    url = serve(registrants, "--no-scheduler")
    created = httpx.post(
        f"{url}/admin/api/broadcasts",
        json={"event_id": EVENT_ID, "audience": "confirmed", "text": "明天见"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert created.status_code == 201, created.text
    # The broadcast arriving shows the process has been up and sending well past its start-up.
    wait_until(lambda: len(fake_wechat.messages()) >= len(REGISTRANTS), timeout=60, what="the broadcast")

    assert [message["body"]["text"]["content"] for message in fake_wechat.messages()] == ["明天见"] * len(REGISTRANTS)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ReminderRun)) == 0

"""Two ``eventbot serve`` processes on one PostgreSQL database and one Redis share every piece of state.

WeChat may deliver a message and its retries to different replicas behind a load balancer; followers'
form steps too. Runs in the PostgreSQL + Redis test run only (SQLite is the single-machine default).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select

from bot.devtools.simulator import WeChatSimulator
from models import Follower, Registration
from tests.conftest import BACKEND, BEFORE_EVENT, METRICS_AUTH, METRICS_TOKEN, REPO_ROOT, TOKEN
from tests.polling import wait_until
from tests.registration_steps import EVENT_ID, form_messages
from tests.servers import free_port, wait_until_serving

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BACKEND != "postgresql", reason="several server processes share PostgreSQL and Redis"),
]

SEATS = 5
REGISTRANTS = 12


def config_with_seats(tmp_path: Path, seats: int) -> Path:
    """config.toml with the (first) event's capacity set to ``seats``."""
    text, replaced = re.subn(r"^capacity = \d+", f"capacity = {seats}", (REPO_ROOT / "config.toml").read_text(), count=1, flags=re.MULTILINE)
    assert replaced == 1, "config.toml has no capacity line to change"
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def servers(settings, tmp_path) -> Iterator[list[WeChatSimulator]]:
    """Two server processes, each a simulated WeChat pointed at it."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("WECHAT_", "EVENTBOT_"))}
    environment |= {
        "WECHAT_TOKEN": TOKEN,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "EVENTBOT_REDIS_NAMESPACE": settings.redis_namespace,
        "EVENTBOT_CONFIG": str(config_with_seats(tmp_path, SEATS)),
        "EVENTBOT_NOW": BEFORE_EVENT.isoformat(),
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    processes, simulators = [], []
    try:
        for name in ("a", "b"):
            port, log = free_port(), tmp_path / f"server-{name}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                    cwd=REPO_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
                )
            processes.append(process)
            url = f"http://127.0.0.1:{port}"
            wait_until_serving(process, url, log)
            simulators.append(WeChatSimulator(httpx.Client(base_url=url, timeout=10), TOKEN))
        yield simulators
    finally:
        for simulator in simulators:
            simulator.client.close()
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def scalar(database_url: str, statement):
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(statement)
    finally:
        engine.dispose()


def deduplicated_retries(simulator: WeChatSimulator) -> float:
    families = text_string_to_metric_families(simulator.client.get("/metrics", headers=METRICS_AUTH).text)
    return next(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "eventbot_deduplicated_retries_total"
    )


def test_a_message_and_its_retries_on_both_processes_get_one_reply_from_one_ledger_entry(servers, settings):
    first, second = servers
    push = first.text_xml("o-behind-the-balancer", "报名")

    replies = [simulator.post(push) for simulator in (first, second, first, second)]

    assert "姓名" in replies[0].content
    # Byte for byte, CreateTime included: the retries got the stored reply, not a second rendering.
    assert {reply.body for reply in replies} == {replies[0].body}
    ledger = redis.Redis.from_url(settings.redis_url)
    try:
        assert len(ledger.keys(f"{settings.redis_namespace}:inbound:*")) == 1
    finally:
        ledger.close()
    assert deduplicated_retries(first) + deduplicated_retries(second) == 3
    wait_for_followers(settings, "o-behind-the-balancer")


def test_a_question_and_its_retries_on_both_processes_are_answered_alike_from_content(servers, settings):
    first, second = servers
    push = first.text_xml("o-asks-both", "议程")

    replies = [simulator.post(push) for simulator in (first, second, first, second)]

    assert "议程" in replies[0].content and {reply.content for reply in replies} == {replies[0].content}
    ledger = redis.Redis.from_url(settings.redis_url)
    try:
        assert ledger.keys(f"{settings.redis_namespace}:inbound:*") == []
    finally:
        ledger.close()
    wait_for_followers(settings, "o-asks-both")


def wait_for_followers(settings, openid: str) -> None:
    """One follower row for ``openid``, and one in all: activity is written behind, by whichever process
    answered, within a second or so."""
    rows_for_openid = select(func.count()).select_from(Follower).where(Follower.openid == openid)
    wait_until(lambda: scalar(settings.database_url, rows_for_openid) == 1, timeout=10, what="the follower's row")
    assert scalar(settings.database_url, select(func.count()).select_from(Follower)) == 1


def register_across_both(servers: list[WeChatSimulator], index: int) -> tuple[str, str, str]:
    """One follower's whole form, steps alternating between the processes; 确认 retried on the other one."""
    openid = f"o-rush-{index}"
    for step, text in enumerate(form_messages(name=f"报名者{index}")):
        servers[(index + step) % 2].send_text(openid, text)
    confirmation = servers[index % 2].text_xml(openid, "确认")
    answer = servers[index % 2].post(confirmation)
    retry = servers[(index + 1) % 2].post(confirmation)
    return openid, answer.body, retry.body


def test_concurrent_registrations_through_both_processes_respect_capacity_once_each(servers, settings):
    with ThreadPoolExecutor(REGISTRANTS) as pool:
        outcomes = list(pool.map(lambda index: register_across_both(servers, index), range(REGISTRANTS)))

    assert all(answer == retry and "<xml>" in answer for _openid, answer, retry in outcomes)
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Registration.openid, Registration.status, Registration.position).where(
                    Registration.event_id == EVENT_ID
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(row.openid for row in rows) == sorted(openid for openid, _answer, _retry in outcomes)
    assert sum(row.status == "confirmed" for row in rows) == SEATS
    waitlisted = sorted(row.position for row in rows if row.status == "waitlisted")
    assert waitlisted == list(range(1, REGISTRANTS - SEATS + 1))

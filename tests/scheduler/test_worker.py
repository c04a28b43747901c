"""Several workers on one database: exactly one runs the scheduler, and another takes over when it goes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.db import create_db_engine
from scheduler.jobs import JobQueue
from scheduler.leader import leader_lock
from scheduler.worker import SchedulerLeader
from tests.conftest import BACKEND, REPO_ROOT
from tests.polling import wait_until

LEADING = "this process now runs the scheduler"


@pytest.fixture
def leaders(settings, clock):
    """Workers as separate processes would have them: each its own engine, lock and scheduler."""
    made: list[tuple[SchedulerLeader, object]] = []

    def make() -> SchedulerLeader:
        engine = create_db_engine(settings.database_url)
        leader = SchedulerLeader(JobQueue(settings, engine, clock), leader_lock(engine))
        made.append((leader, engine))
        return leader

    yield make
    for leader, engine in made:
        leader.stop()
        engine.dispose()


def test_only_one_of_two_workers_runs_the_scheduler(leaders):
    first, second = leaders(), leaders()

    assert [first.tick(), second.tick(), first.tick(), second.tick()] == [True, False, True, False]
    assert (first.leading, second.leading) == (True, False)


def test_another_worker_takes_over_when_the_leader_stops(leaders):
    first, second = leaders(), leaders()
    first.tick()
    second.tick()

    first.stop()

    assert second.tick() is True
    assert (first.leading, second.leading) == (False, True)


def _worker_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "eventbot-worker"]


def test_app_runs_the_scheduler_only_when_enabled(make_settings, make_app, caplog):
    caplog.set_level(logging.INFO, logger="scheduler.worker")
    for enabled in (False, True):
        app = make_app(make_settings(run_scheduler=enabled))
        with TestClient(app):
            assert len(_worker_threads()) == int(enabled)
            if enabled:
                wait_until(lambda: LEADING in caplog.text, what="the worker to lead")
        assert _worker_threads() == []


def _start_worker(database_url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "EVENTBOT_CONFIG": str(REPO_ROOT / "config.toml")}
    env.pop("EVENTBOT_RUN_SCHEDULER", None)
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--tick-seconds", "0.2", "--no-send-outbox"],
            cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )


def _leads(log: Path) -> bool:
    return LEADING in log.read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "postgresql", reason="several worker processes share a PostgreSQL database")
def test_two_worker_processes_on_postgresql_run_one_scheduler_and_fail_over(settings, tmp_path):
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [_start_worker(settings.database_url, log) for log in logs]
    try:
        wait_until(lambda: any(_leads(log) for log in logs), what="a worker to lead")
        # Many ticks later, still exactly one leader: the time that passes is what is tested.
        time.sleep(2)
        assert [_leads(log) for log in logs].count(True) == 1
        leader = next(index for index, log in enumerate(logs) if _leads(log))
        follower = 1 - leader

        workers[leader].send_signal(signal.SIGKILL)
        workers[leader].wait(timeout=10)

        wait_until(lambda: _leads(logs[follower]), what="the other worker to take over")
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)

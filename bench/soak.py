"""Soak: mixed traffic for a long while, to see that memory and tables stay flat (not a timed test).

``eventbot serve`` (2 workers, the scheduler in the app, PostgreSQL + Redis) gets, every second: questions
from a rotating crowd of followers, registrations filled step by step, a flood from one follower (the
rate limit answers it), and admin reads. Every minute it prints the workers' RSS, the row counts of the
operational tables and Redis's key count; at the end, the change over the second half. The form timeout
is shortened to two minutes (a copy of config.toml) so that retention has something to delete within the run.

Run: ``.venv/bin/python bench/soak.py [--minutes 10] [--rate 50]``; ``--publish`` writes the figures to
bench/RESULTS.md (section ``soak``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import secrets
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    EVENTBOT_SERVE,
    OUT_DIR,
    REDIS_URL,
    REPO_ROOT,
    TOKEN,
    bench_postgres_database,
    eventbot_environment,
    free_port,
    machine_description,
    running,
    write_section,
)
from bot.devtools.simulator import push_xml  # noqa: E402
from bot.wechat import sign  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from tests.registration_steps import form_messages  # noqa: E402

ADMIN_TOKEN = "soak-admin-token"
TABLES = ("followers", "form_states", "inbound_messages", "registrations", "deliveries")
CROWD = 5000


def soak_config() -> Path:
    """config.toml with room for every registrant and a two-minute form timeout."""
    config = (REPO_ROOT / "config.toml").read_text(encoding="utf-8")
    config = re.sub(r"^capacity = \d+", "capacity = 100000", config, count=1, flags=re.MULTILINE)
    config = re.sub(r'^form_expires_after = "[^"]*"', 'form_expires_after = "2m"', config, count=1, flags=re.MULTILINE)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / "config-soak.toml"
    path.write_text(config, encoding="utf-8")
    return path


class Traffic:
    """Signed pushes to one server, counted by HTTP status."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=10)
        self.statuses: dict[int, int] = {}
        self.msg_ids = itertools.count(int(time.time() * 1000) * 1000)

    async def say(self, openid: str, words: str) -> str:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        params = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        body = push_xml(openid, "text", {"Content": words, "MsgId": next(self.msg_ids)})
        try:
            response = await self.client.post("/wechat", params=params, content=body.encode())
            status = response.status_code
        except httpx.HTTPError:
            status = 0  # no answer at all
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return response.text if status == 200 else ""

    async def admin_read(self) -> None:
        response = await self.client.get("/admin/api/events", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1


async def register(traffic: Traffic, openid: str, number: int) -> None:
    for words in (*form_messages(name=f"参会者{number}", phone=f"139{number % 10**8:08d}"), "确认"):
        await traffic.say(openid, words)


async def one_second(traffic: Traffic, second: int, rate: int, run: str) -> None:
    """What arrives in one second: questions, a few registrations, some abandoned forms, a flood, admin reads."""
    work = [traffic.say(f"o-{run}-{random.randrange(CROWD)}", random.choice(("议程", "时间", "地点", "直播", "帮助")))
            for _ in range(rate)]
    work += [register(traffic, f"o-{run}-reg-{second}-{n}", second * 10 + n) for n in range(2)]
    work.append(traffic.say(f"o-{run}-abandon-{second}", "报名"))  # never finished: retention's to delete
    if second % 10 == 0:
        work += [traffic.say(f"o-{run}-flood-{second // 60}", "我的报名") for _ in range(50)]
    work += [traffic.admin_read() for _ in range(2)]
    await asyncio.gather(*work)


def table_sizes(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() for table in TABLES}
    finally:
        engine.dispose()


def namespace_keys(redis_client: redis.Redis, namespace: str) -> int:
    """The bot's keys in Redis (the server may hold others')."""
    return sum(1 for _ in redis_client.scan_iter(f"{namespace}:*", count=1000))


async def soak(url: str, server, database_url: str, redis_client: redis.Redis, namespace: str, minutes: int,
               rate: int) -> list[dict]:
    traffic, run, rows = Traffic(url), uuid.uuid4().hex[:6], []
    started = time.monotonic()
    for second in range(minutes * 60):
        await asyncio.gather(one_second(traffic, second, rate, run), asyncio.sleep(1))
        if (second + 1) % 60 == 0:
            row = {"minute": (second + 1) // 60, "rss_mb": round(sum(server.worker_rss_mb()), 1),
                   **table_sizes(database_url), "redis_keys": namespace_keys(redis_client, namespace),
                   "statuses": dict(traffic.statuses), "elapsed_s": round(time.monotonic() - started)}
            rows.append(row)
            print(row, flush=True)
    await traffic.client.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=int, default=50, help="questions per second")
    parser.add_argument("--publish", action="store_true", help="write the figures to bench/RESULTS.md")
    args = parser.parse_args()
    redis_client = redis.Redis.from_url(REDIS_URL)
    with bench_postgres_database() as database_url:
        upgrade(database_url)
        port = free_port()
        environment = eventbot_environment(database_url, REDIS_URL, aes=False, metrics_dir=OUT_DIR / "soak-metrics",
                                           config=soak_config())
        (OUT_DIR / "soak-metrics").mkdir(parents=True, exist_ok=True)
        environment |= {"ADMIN_TOKEN": ADMIN_TOKEN}  # `serve` runs the scheduler (retention) by default
        command = [part.format(port=port) for part in EVENTBOT_SERVE]
        with running("eventbot", command, port=port, env=environment, ready_path="/healthz",
                     log=OUT_DIR / "soak-server.log") as server:
            rows = asyncio.run(soak(server.url, server, database_url, redis_client,
                                    environment["EVENTBOT_REDIS_NAMESPACE"], args.minutes, args.rate))
    redis_client.close()
    if args.publish and rows:
        # Its own section only: the machine section describes the other benchmarks' runs.
        section = soak_section(rows, args.rate)
        write_section("soak", section)
        print(section)


def soak_section(rows: list[dict], rate: int) -> str:
    columns = ["minute", "rss_mb", *TABLES, "redis_keys"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows]
    machine = machine_description()
    return f"""## Soak (`bench/soak.py`)

Measured {machine['date']} on {machine['nproc']} CPUs shared with other work: {len(rows)} minutes of mixed traffic on PostgreSQL + Redis, 2 workers, the scheduler in the app: {rate}
questions a second from a crowd of {CROWD}, two registrations and one abandoned form a second, a flood of
50 messages from one follower every ten seconds, two admin reads a second; form timeout two minutes.
HTTP statuses over the run: {rows[-1]["statuses"]}. Followers and registrations grow with the traffic by
design; `form_states` levels off once the first forms expire (timeout plus the one-minute retention job,
about three minutes in); Redis's keys once the first signed-push bindings expire (660 s: a run of 12 minutes
or more shows it); RSS should stay flat.

{chr(10).join(lines)}
"""


if __name__ == "__main__":
    main()

"""Benchmark 3: a registration burst. Many followers complete the whole form at once.

Each follower sends 报名, 同意 to the privacy notice, every answer and 确认 as separate signed messages, each step after the reply to
the last, 64 followers in flight at a time, against ``eventbot serve --workers 2`` on SQLite and on
PostgreSQL + Redis. The event's capacity is set below the number of followers so the waitlist fills too.
Reports form messages/s, completed registrations/s, the bot's CPU per message (its processes' user +
system time: steadier than the rate on a shared machine), p50/p99 per step, and checks the database:
nobody lost, nobody registered twice, seats = capacity, waitlist positions 1..n without gaps.

Run: ``.venv/bin/python bench/registration_burst.py [--followers 2000] [--capacity 1500]``
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select  # noqa: E402

from bench.harness import (  # noqa: E402
    EVENTBOT_SERVE,
    OUT_DIR,
    TOKEN,
    config_with_capacity,
    eventbot_environment,
    free_port,
    percentile,
    process_tree_cpu_seconds,
    publish,
    replay_conversations,
    run_on_backends,
    running,
)
from bot.devtools.simulator import push_xml  # noqa: E402
from bot.wechat import sign  # noqa: E402
from models import Registration  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from tests.registration_steps import EVENT_ID, FORM_ORDER, form_messages  # noqa: E402

STEPS = ("报名", *FORM_ORDER, "确认")
TARGET_MESSAGES_PER_SECOND = 1000


@dataclass
class BurstResult:
    backend: str
    followers: int
    seconds: float
    step_latencies: dict[int, list[float]]
    failed_steps: int
    registered: int
    duplicated: int
    confirmed: int
    waitlist_ok: bool
    server_cpu_seconds: float

    @property
    def messages(self) -> int:
        return sum(len(latencies) for latencies in self.step_latencies.values())


def conversations(followers: int) -> tuple[list[str], list]:
    """Each follower's whole form as request builders, signed when sent."""
    run = uuid.uuid4().hex[:8]
    msg_ids = iter(range(int(time.time() * 1000) * 1000, 2**62))

    def builder(openid: str, text: str):
        msg_id = next(msg_ids)

        def build() -> tuple[str, bytes]:
            timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
            target = f"/wechat?signature={sign(TOKEN, timestamp, nonce)}&timestamp={timestamp}&nonce={nonce}"
            return target, push_xml(openid, "text", {"Content": text, "MsgId": msg_id}).encode()

        return build

    openids, conversation_list = [], []
    for index in range(followers):
        openid = f"o-burst-{run}-{index}"
        texts = [*form_messages(name=f"报名者{index}", phone=f"139{index:08d}"), "确认"]
        openids.append(openid)
        conversation_list.append([builder(openid, text) for text in texts])
    return openids, conversation_list


def check_database(database_url: str, openids: list[str], capacity: int) -> tuple[int, int, int, bool]:
    """(followers registered, duplicate registrations, confirmed, waitlist positions 1..n)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Registration.openid, Registration.status, Registration.position).where(
                    Registration.event_id == EVENT_ID, Registration.openid.in_(openids)
                )
            ).all()
    finally:
        engine.dispose()
    per_follower = defaultdict(int)
    for row in rows:
        per_follower[row.openid] += 1
    positions = sorted(row.position for row in rows if row.status == "waitlisted")
    return (
        len(per_follower),
        sum(count - 1 for count in per_follower.values()),
        sum(row.status == "confirmed" for row in rows),
        positions == list(range(1, len(positions) + 1)),
    )


def burst(backend: str, database_url: str, redis_url: str, args, scratch: Path) -> BurstResult:
    config = config_with_capacity(args.capacity)
    upgrade(database_url)
    env = eventbot_environment(database_url, redis_url, aes=False,
                               metrics_dir=Path(tempfile.mkdtemp(dir=scratch)), config=config)
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in EVENTBOT_SERVE]
    openids, conversation_list = conversations(args.followers)
    with running(f"eventbot {backend}", command, port=port, env=env, ready_path="/healthz",
                 log=OUT_DIR / f"burst-{backend}.log") as server:
        started, cpu_before = time.perf_counter(), process_tree_cpu_seconds(server.process.pid)
        results = replay_conversations(port, conversation_list, args.connections)
        seconds = time.perf_counter() - started
        # The bot's CPU per message: steadier than messages/s on a machine whose speed varies by the hour.
        server_cpu = process_tree_cpu_seconds(server.process.pid) - cpu_before
    latencies: dict[int, list[float]] = defaultdict(list)
    failed = 0
    for _follower, step, elapsed, answer in results:
        latencies[step].append(elapsed)
        failed += b"<xml>" not in answer
    registered, duplicated, confirmed, waitlist_ok = check_database(database_url, openids, args.capacity)
    result = BurstResult(backend, args.followers, seconds, latencies, failed, registered, duplicated, confirmed,
                         waitlist_ok, server_cpu)
    print(f"  {backend}: {result.messages / seconds:.0f} form messages/s, {args.followers / seconds:.0f} "
          f"registrations/s, bot CPU {1000 * server_cpu / result.messages:.2f} ms/message, registered {registered}/{args.followers}, duplicated {duplicated}, "
          f"failed steps {failed}", flush=True)
    return result


def report(results: list[BurstResult], args) -> str:
    rows = [
        "| backend | form messages/s | registrations/s | bot CPU ms/message | " + " | ".join(f"p50/p99 ms {step}" for step in STEPS)
        + " | failed steps | lost | duplicated | confirmed (capacity) | waitlist 1..n |",
        "|---|---:|---:|---:|" + "---:|" * len(STEPS) + "---:|---:|---:|---:|---|",
    ]
    verdicts = []
    for r in results:
        per_step = " | ".join(
            f"{1000 * percentile(r.step_latencies[step], 0.5):.0f} / {1000 * percentile(r.step_latencies[step], 0.99):.0f}"
            for step in range(len(STEPS))
        )
        expected_confirmed = min(args.capacity, args.followers)
        rows.append(
            f"| {r.backend} | {r.messages / r.seconds:.0f} | {r.followers / r.seconds:.0f} | "
            f"{1000 * r.server_cpu_seconds / r.messages:.2f} | {per_step} | "
            f"{r.failed_steps} | {r.followers - r.registered} | {r.duplicated} | {r.confirmed} ({args.capacity}) | "
            f"{'yes' if r.waitlist_ok else 'NO'} |"
        )
        correct = (r.registered == r.followers and r.duplicated == 0 and r.confirmed == expected_confirmed
                   and r.waitlist_ok and r.failed_steps == 0)
        verdicts.append(f"- {r.backend}: {'met' if correct else 'MISSED'}: zero lost, zero duplicated, capacity "
                        f"respected, every step answered")
        if r.backend.startswith("PostgreSQL"):
            fast = r.messages / r.seconds >= TARGET_MESSAGES_PER_SECOND
            verdicts.append(f"- {r.backend}: {'met' if fast else 'MISSED'}: ≥ {TARGET_MESSAGES_PER_SECOND} form "
                            f"messages/s ({r.messages / r.seconds:.0f})")
    return f"""## Registration burst (benchmark 3: `bench/registration_burst.py`)

{args.followers} followers each send 报名, 同意 and {len(FORM_ORDER) - 1} answers, then 确认 ({len(STEPS)} signed messages,
each after the reply to the previous one), {args.connections} followers in flight; capacity {args.capacity}
seats, so {max(0, args.followers - args.capacity)} end on the waitlist. `eventbot serve --workers 2`.

{chr(10).join(rows)}

{chr(10).join(verdicts)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=1500)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    results = run_on_backends(
        lambda backend, database_url, redis_url, scratch: burst(backend, database_url, redis_url, args, scratch),
        sqlite=not args.skip_sqlite,
        prefix="eventbot-burst-",
    )
    publish("registration-burst", report(results, args))

if __name__ == "__main__":
    main()

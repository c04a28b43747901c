"""Benchmark 4: reminder fan-out. 10,000 confirmed registrants, a fake WeChat API that takes 20 ms per call.

Seeds the registrants (each wrote to the account an hour before, so the customer-service channel is
open), serves the fake WeChat API in this process with a 20 ms latency on every message call, and starts
the senders a few seconds before the event's first reminder is due, as long-running processes would be
running. Reports the time from the due moment until the fake has received every reminder, the fake's
count (exactly one per registrant expected) and the senders' rate.

Run: ``.venv/bin/python bench/reminder_fanout.py [--registrants 10000] [--latency 0.02] [--shapes 1,2,deployment]``
(PostgreSQL + Redis; ``--sqlite`` for the embedded database too). Shapes: ``N``, the worker and N-1
``eventbot send`` processes; ``deployment``, the worker beside ``eventbot serve --workers 2``, as
docker-compose and deploy/kubernetes run them (each webhook worker sends too; all share the outbox).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert  # noqa: E402

from bench.harness import (  # noqa: E402
    EVENTBOT,
    EVENTBOT_SERVE,
    OUT_DIR,
    config_with_capacity,
    eventbot_environment,
    free_port,
    process_tree_cpu_seconds,
    publish,
    run_on_backends,
)
from bot.devtools.fake_wechat import (  # noqa: E402
    FakeWeChat,
    FakeWeChatServer,
    Fault,
    FollowerActivity,
)
from models import Follower, Registration  # noqa: E402
from models.content import load_content  # noqa: E402
from models.migrate import upgrade  # noqa: E402

APP_ID, APP_SECRET = "wx-bench-app", "bench-app-secret"
TARGET_SECONDS = 20
DEPLOYMENT = "deployment"
REMINDER_JOB_STARTED = re.compile(
    r'(?P<second>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(?P<millis>\d{3}) INFO apscheduler\.executors\.default: Running job "[^"]* reminder '
)


def seed(database_url: str, event_id: str, count: int, wrote_at: datetime, confirmed_at: datetime) -> list[str]:
    """``count`` followers with a confirmed on-site registration each; returns their openids."""
    openids = [f"o-fanout-{index:06d}" for index in range(count)]
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(Follower), [
                {"openid": openid, "subscribed": True, "first_seen_at": wrote_at, "last_interaction_at": wrote_at}
                for openid in openids
            ])
            connection.execute(insert(Registration), [
                {"event_id": event_id, "openid": openid, "name": f"参会者{index}", "attendance": "onsite",
                 "status": "confirmed", "checkin_code": f"{index:06d}", "created_at": confirmed_at,
                 "updated_at": confirmed_at, "confirmed_at": confirmed_at}
                for index, openid in enumerate(openids)
            ])
    finally:
        engine.dispose()
    return openids


def reminder_started_at(log: Path) -> float:
    """When the worker's scheduler started the reminder job (its log line), as a ``time.time()``.

    The moment the reminder was due, give or take the scheduler's own delay (part of the figure). Read
    from the log because each process's shifted clock starts when that process has loaded its settings.
    """
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        found = REMINDER_JOB_STARTED.match(line)
        if found:
            return time.mktime(time.strptime(found["second"], "%Y-%m-%d %H:%M:%S")) + int(found["millis"]) / 1000
    raise SystemExit(f"the reminder job never started; see {log}")


def fan_out(backend: str, database_url: str, redis_url: str, args, scratch: Path, shape: str) -> dict:
    """One fan-out; ``shape`` is "deployment" or a number of sender processes."""
    config = config_with_capacity(args.registrants)
    event = load_content(config).events[0]
    first_reminder = max(event.reminder_offsets())  # the earliest one before the event
    # The senders start (and warm up) ``lead`` seconds before the reminder is due, as long-running
    # processes would be; the figure runs from the moment it is due.
    now = event.starts_at - first_reminder - timedelta(seconds=args.lead)
    upgrade(database_url)
    openids = seed(database_url, event.id, args.registrants, now - timedelta(hours=1), now - timedelta(days=2))

    fake = FakeWeChat(APP_ID, APP_SECRET, customer_service_per_window=5)
    fake.set_now(now)
    for openid in openids:
        fake.tell_follower(FollowerActivity(openid=openid, last_interaction_at=now - timedelta(hours=1)))
    fake.inject(Fault(kind="latency", seconds=args.latency, times=None))

    with FakeWeChatServer(fake) as server:
        env = eventbot_environment(database_url, redis_url, aes=False, metrics_dir=Path(tempfile.mkdtemp(dir=scratch)),
                                   config=config)
        env |= {"WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET, "WECHAT_API_BASE_URL": server.base_url,
                "EVENTBOT_NOW": now.isoformat()}
        log = OUT_DIR / f"fanout-{backend}.log"
        # The worker sends too; each further sender is an ``eventbot send`` beside it, or, with
        # "deployment", the webhook's two workers (``bot.asgi`` runs a sender in each), as docker-compose
        # and deploy/kubernetes run them. Senders share the outbox through SKIP LOCKED claims.
        commands = [[str(EVENTBOT), "worker", "--tick-seconds", "0.5"]]
        if shape == DEPLOYMENT:
            commands.append([part.replace("{port}", str(free_port())) for part in EVENTBOT_SERVE])
        else:
            commands += [[str(EVENTBOT), "send"]] * (int(shape) - 1)
        with log.open("wb") as output:
            started = time.time()
            processes = [subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
                         for command in commands]
            try:
                first_at = cpu_at_first = None
                deadline = started + args.timeout
                while len(fake.messages) < args.registrants and time.time() < deadline:
                    if first_at is None and fake.messages:
                        first_at, cpu_at_first = time.time(), sum(process_tree_cpu_seconds(p.pid) for p in processes)
                    for process in processes:
                        if process.poll() is not None:
                            raise SystemExit(f"{process.args[1]} exited with {process.returncode}; see {log}")
                    time.sleep(0.05)
                done_at = time.time()
                # The senders' CPU per message while sending: steadier than seconds on a shared machine.
                sending_cpu = sum(process_tree_cpu_seconds(p.pid) for p in processes) - (cpu_at_first or 0)
                time.sleep(args.settle)  # anything sent twice would arrive now
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(timeout=30)
    recipients = Counter(message["touser"] for message in fake.messages)
    result = {
        "backend": backend,
        "senders": "worker + webhook's 2 workers" if shape == DEPLOYMENT else shape,
        "received": len(fake.messages),
        "distinct": len(recipients),
        "twice": sum(1 for count in recipients.values() if count > 1),
        "seconds_from_due": done_at - reminder_started_at(log),
        "sending_seconds": done_at - (first_at or done_at),
        "token_fetches": fake.token_fetches,
        "cpu_ms_per_message": sending_cpu * 1000 / max(len(fake.messages), 1),
        "concurrency": load_content(config).delivery.concurrency,
    }
    print(f"  {backend}: {result['received']} received ({result['distinct']} followers) in "
          f"{result['seconds_from_due']:.1f} s from the reminder's due time, {result['sending_seconds']:.1f} s from the first",
          flush=True)
    return result


def report(results: list[dict], args) -> str:
    rows = ["| backend | sender processes | received by the fake | distinct followers | received twice | "
            "seconds from due time | seconds first → last | messages/s | senders' CPU ms/message | token fetches |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    verdicts = []
    for r in results:
        rate = r["received"] / r["sending_seconds"] if r["sending_seconds"] else float("nan")
        rows.append(f"| {r['backend']} | {r['senders']} | {r['received']} | {r['distinct']} | {r['twice']} | {r['seconds_from_due']:.1f} | "
                    f"{r['sending_seconds']:.1f} | {rate:.0f} | {r['cpu_ms_per_message']:.2f} | {r['token_fetches']} |")
        exact = r["received"] == r["distinct"] == args.registrants
        fast = r["seconds_from_due"] <= TARGET_SECONDS
        verdicts.append(f"- {r['backend']}, {r['senders']}: {'met' if exact else 'MISSED'}: exactly {args.registrants} "
                        f"received; {'met' if fast else 'MISSED'}: all delivered ≤ {TARGET_SECONDS} s after the due time ({r['seconds_from_due']:.1f} s)")
    return f"""## Reminder fan-out (benchmark 4: `bench/reminder_fanout.py`)

{args.registrants} confirmed registrants; the fake WeChat API (in the benchmark's process) adds
{args.latency * 1000:.0f} ms to every message call. The senders start about {args.lead:.0f} s before the first reminder is
due, and the time runs from the moment the worker's scheduler starts its job (logged): `eventbot worker` alone (1), with `eventbot send` processes beside it (2, …), or beside
`eventbot serve --workers 2` as docker-compose and deploy/kubernetes run them (each webhook worker sends
too). `[delivery] concurrency = {results[0]['concurrency']}` from config.toml; customer-service messages,
everyone wrote within 48 h. Each row on fresh databases.

{chr(10).join(rows)}

{chr(10).join(verdicts)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registrants", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the fake adds to every call")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--lead", type=float, default=8,
                        help="seconds the senders run before the reminder is due (their start-up)")
    parser.add_argument("--settle", type=float, default=3, help="seconds to watch for duplicates afterwards")
    parser.add_argument("--sqlite", action="store_true", help="also on SQLite")
    parser.add_argument("--shapes", default=f"1,{DEPLOYMENT}",
                        help="comma-separated: N (the worker, plus N-1 `eventbot send`s) or "
                             f"{DEPLOYMENT} (the worker beside `eventbot serve --workers 2`, whose workers send too)")
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    results = [
        result
        for shape in args.shapes.split(",")  # each on fresh databases: a reminder is decided once per database
        for result in run_on_backends(
            lambda backend, database_url, redis_url, scratch: fan_out(backend, database_url, redis_url, args, scratch, shape),
            sqlite=args.sqlite,
            prefix="eventbot-fanout-",
        )
    ]
    publish("reminder-fanout", report(results, args))

if __name__ == "__main__":
    main()

"""What each step of the registration form costs the bot itself: CPU and wall time per message, no HTTP.

Followers fill the whole form (报名, 同意, every answer, 确认) one message after another, through the app's own
``Responder`` in this process, on PostgreSQL + Redis: the handler's work, its Redis and database round
trips and the commit, without the webhook, the thread hop or other load. Where benchmark 3
(``registration_burst.py``) measures the whole machine under a burst, this says which step costs what,
so a change to one step can be measured on its own. Process CPU includes the activity recorder's thread.

Run: ``.venv/bin/python bench/form_steps.py [--followers 300]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BENCH_NOW,
    REDIS_URL,
    TOKEN,
    bench_postgres_database,
    config_with_capacity,
)
from models.migrate import upgrade  # noqa: E402
from tests.registration_steps import form_messages  # noqa: E402

STEPS = ("报名", "consent", "name", "phone", "company", "title", "attendance", "确认")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=300)
    args = parser.parse_args()
    with bench_postgres_database() as database_url:
        upgrade(database_url)
        # Settings come from the environment, as in ``eventbot serve``; this process is the bot here.
        os.environ.update(WECHAT_TOKEN=TOKEN, DATABASE_URL=database_url, REDIS_URL=REDIS_URL,
                          EVENTBOT_REDIS_NAMESPACE=f"bench-steps-{uuid.uuid4().hex[:8]}",
                          EVENTBOT_CONFIG=str(config_with_capacity(args.followers + 1)), EVENTBOT_NOW=BENCH_NOW)
        from bot.app import create_app
        from bot.devtools.simulator import push_xml
        from bot.settings import load_settings
        from bot.wechat import parse_push

        app = create_app(load_settings())
        stop_recorder = app.state.services.activity.start()
        wall: dict[int, float] = defaultdict(float)
        cpu: dict[int, float] = defaultdict(float)
        msg_ids = iter(range(int(time.time() * 1000) * 1000, 2**62))
        try:
            # Follower -1 is not timed: the first use of each statement compiles it, once per process.
            for index in range(-1, args.followers):
                texts = [*form_messages(name=f"报名者{index}", phone=f"139{index % 10**8:08d}"), "确认"]
                for step, text in enumerate(texts):
                    message = parse_push(push_xml(f"o-steps-{index}", "text", {"Content": text, "MsgId": next(msg_ids)}))
                    started_wall, started_cpu = time.perf_counter(), time.process_time()
                    app.state.services.responder.respond_with_database(message)
                    if index >= 0:
                        wall[step] += time.perf_counter() - started_wall
                        cpu[step] += time.process_time() - started_cpu
        finally:
            stop_recorder()
            app.state.services.engine.dispose()
    print(f"{args.followers} followers, each message through Responder.respond_with_database (PostgreSQL + Redis)")
    print("| step | CPU ms/message | wall ms/message |")
    print("|---|---:|---:|")
    for step, name in enumerate(STEPS):
        print(f"| {name} | {1000 * cpu[step] / args.followers:.2f} | {1000 * wall[step] / args.followers:.2f} |")
    messages = args.followers * len(STEPS)
    print(f"| all steps, per message | {1000 * sum(cpu.values()) / messages:.2f} | {1000 * sum(wall.values()) / messages:.2f} |")


if __name__ == "__main__":
    main()

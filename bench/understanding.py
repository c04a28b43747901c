"""How well the bot understands what followers type (issue 20): prints figures, asserts nothing.

Runs the corpus of realistic follower messages (tests/fixtures/understanding_corpus.tsv: typos,
traditional characters, English, questions inside the form) through the real responder with the shipped
config.toml, on a temporary SQLite database, with the clock before, during and after the event. Prints
the accuracy per phase and per expected topic, every miss, and the responder's time per message
(answer time over HTTP is bench/qa_throughput.py's, run with its baselines).

Run: ``.venv/bin/python bench/understanding.py [--corpus PATH] [--config PATH]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import create_app  # noqa: E402
from bot.devtools.understanding import CORPUS, CorpusRun, Result, accuracy, load_corpus  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from models.clock import ManualClock  # noqa: E402
from models.db import create_db_engine  # noqa: E402
from models.migrate import upgrade  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "config.toml")
    arguments = parser.parse_args()

    cases = load_corpus(arguments.corpus)
    with tempfile.TemporaryDirectory(prefix="eventbot-understanding-") as folder:
        url = f"sqlite:///{Path(folder) / 'understanding.db'}"
        upgrade(url)
        settings = load_settings(
            wechat_token="bench", database_url=url, redis_url="", config_path=arguments.config, admin_openids_raw=""
        )
        clock = ManualClock(settings.content.events[0].starts_at)
        engine = create_db_engine(url)
        try:
            responder = create_app(settings, clock=clock, engine=engine).state.services.responder
            timings: list[float] = []
            started = [time.perf_counter()]

            def timed(_result: Result) -> None:
                now = time.perf_counter()
                timings.append(now - started[0])
                started[0] = now

            results = CorpusRun(responder, clock, settings.content).run(cases, progress=timed)
        finally:
            engine.dispose()

    print(f"{len(cases)} messages, {len(results)} answers (a message may be asked in several phases)\n")
    for phase in ("before", "during", "after"):
        in_phase = [result for result in results if result.phase == phase]
        print(f"{phase:7} {accuracy(in_phase):6.1%}  ({sum(r.right for r in in_phase)}/{len(in_phase)})")
    print(f"{'all':7} {accuracy(results):6.1%}\n")

    by_topic: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        by_topic[result.case.expected.split(":")[0] if result.case.expected.startswith("form@") else result.case.expected].append(result)
    print("per expected answer:")
    for topic, topic_results in sorted(by_topic.items()):
        print(f"  {topic:24} {accuracy(topic_results):6.1%}  ({len(topic_results)})")

    misses = [result for result in results if not result.right]
    print(f"\nmisses ({len(misses)}):")
    for result in misses:
        print(f"  {result.phase:7} {result.case.text!r}: {result.got} (expected {result.case.expected})")

    # Per corpus case, including the form steps a form case sends first: an upper bound per message.
    quantiles = statistics.quantiles(timings, n=100)
    print(f"\nresponder time per case: p50 {quantiles[49] * 1e3:.2f} ms, p99 {quantiles[98] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()

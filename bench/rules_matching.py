"""How much 200 keyword rules of 10 keywords each cost (issue 8): prints figures, asserts nothing.

Run: ``.venv/bin/python bench/rules_matching.py [--rules 200] [--keywords 10] [--messages 2000]``

It writes the shipped config.toml plus the generated rules to bench/out/config-<rules>-rules.toml (point
``EVENTBOT_CONFIG`` at it to run the HTTP Q&A benchmark with them), then measures, in this process:

1. loading that config and compiling the rules (once per process, at start-up);
2. ``RuleMatcher.match`` for a Q&A text no rule answers ("议程", the Q&A benchmark's message), the last
   rule's contains / exact / regex keyword, and a long text, with the shipped rules and the generated ones;
3. the whole responder (ledger, follower row, dispatch, rendering) answering "议程" on temporary SQLite
   databases, with the shipped rules and with the generated ones, in alternating rounds: the Q&A path
   with and without them.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
import timeit
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import create_app  # noqa: E402
from bot.devtools.simulator import push_xml  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.wechat import parse_push  # noqa: E402
from handlers.rules import RuleMatcher  # noqa: E402
from models.clock import ManualClock  # noqa: E402
from models.content import Content, load_content  # noqa: E402
from models.db import create_db_engine  # noqa: E402
from models.migrate import upgrade  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "bench" / "out"
# Before the shipped meetup, so its event-scoped FAQ rules are active too.
NOW = datetime(2023, 3, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def generated_rules_toml(rules: int, keywords: int) -> str:
    """``rules`` rules of ``keywords`` keywords: contains keywords, then one exact and one regex each."""
    blocks = []
    for number in range(rules):
        words = [f'"基准{number}号{index}项"' for index in range(keywords - 2)]
        words.append(f'{{ word = "整句{number}号", mode = "exact" }}')
        words.append(f'{{ word = "^编号\\\\s*{number}号$", mode = "regex" }}')
        blocks.append(f'[[rules]]\nkeywords = [{", ".join(words)}]\n[rules.reply]\ntext = "基准回答{number}"\n')
    return "\n".join(blocks)


def per_call_microseconds(call, repeat: int = 5, number: int = 2000) -> float:
    """The best of ``repeat`` runs of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(call, repeat=repeat, number=number)) / number * 1e6


def matching_figures(label: str, content: Content, rules: int) -> None:
    matcher = RuleMatcher(content.rules)
    last = rules - 1
    texts = {
        "议程 (no rule answers)": "议程",
        "last rule, contains": f"请问基准{last}号3项？",
        "last rule, exact": f"整句{last}号",
        "last rule, regex": f"编号 {last}号",
        "500 characters, no rule": "这是一段很长的留言，" * 50,
    }
    print(f"\nRuleMatcher.match with {label} ({len(content.rules)} rules):")
    for name, text in texts.items():
        found = matcher.match(text, NOW, "meetup-10")
        microseconds = per_call_microseconds(lambda text=text: matcher.match(text, NOW, "meetup-10"))
        answer = found.position if found else "no rule"
        print(f"  {name:<28} {microseconds:8.1f} µs/match   ({answer})")


def responder_figures(configurations: dict[str, Content], messages: int, rounds: int = 5) -> dict[str, float]:
    """Milliseconds per "议程" through the whole responder, per configuration (median of the rounds).

    The rounds alternate between the configurations, so that other load on the machine weighs on both alike.
    """
    timings: dict[str, list[float]] = {label: [] for label in configurations}
    with tempfile.TemporaryDirectory(prefix="eventbot-bench-rules-") as folder, ExitStack() as engines:
        responders = {}
        for number, (label, content) in enumerate(configurations.items()):
            url = f"sqlite:///{Path(folder) / f'bench-{number}.db'}"
            upgrade(url)
            settings = load_settings(content=content, database_url=url, redis_url="", wechat_token="bench-token")
            engine = create_db_engine(url)
            engines.callback(engine.dispose)
            responders[label] = create_app(settings, clock=ManualClock(NOW), engine=engine).state.services.responder
        msg_ids = itertools.count(1)
        for _ in range(rounds):
            for label, responder in responders.items():
                pushes = [
                    parse_push(push_xml(f"o-bench-{index % 500}", "text", {"Content": "议程", "MsgId": next(msg_ids)}))
                    for index in range(messages)
                ]
                began = time.perf_counter()
                for message in pushes:
                    responder.respond(message)
                timings[label].append((time.perf_counter() - began) / messages * 1000)
    for label, rounds_ms in timings.items():
        print(f"  {label:<40} {statistics.median(rounds_ms):6.3f} ms/message  (rounds: {', '.join(f'{r:.3f}' for r in rounds_ms)})")
    return {label: statistics.median(rounds_ms) for label, rounds_ms in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--keywords", type=int, default=10, help="keywords per rule (at least 3)")
    parser.add_argument("--messages", type=int, default=2000, help="messages per responder round")
    args = parser.parse_args()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    config = OUT_DIR / f"config-{args.rules}-rules.toml"
    config.write_text(
        (REPO_ROOT / "config.toml").read_text(encoding="utf-8") + "\n" + generated_rules_toml(args.rules, args.keywords),
        encoding="utf-8",
    )
    shipped = load_content(REPO_ROOT / "config.toml")

    began = time.perf_counter()
    generated = load_content(config)
    loaded = time.perf_counter()
    RuleMatcher(generated.rules)
    compiled = time.perf_counter()
    print(f"config with {len(generated.rules)} rules × {args.keywords} keywords: {config.relative_to(REPO_ROOT)}")
    print(f"  load and validate config.toml  {(loaded - began) * 1000:8.1f} ms (once, at start-up)")
    print(f"  compile the rules              {(compiled - loaded) * 1000:8.1f} ms (once, at start-up)")

    matching_figures("the shipped rules", shipped, len(shipped.rules))
    matching_figures(f"{args.rules} × {args.keywords} generated rules", generated, args.rules)

    print(f"\nResponder answering 议程 ({args.messages} messages a round, SQLite, in-process):")
    many = f"shipped config + {len(generated.rules) - len(shipped.rules)} rules"
    medians = responder_figures({"shipped config": shipped, many: generated}, args.messages)
    without, with_rules = medians["shipped config"], medians[many]
    print(f"  difference of the medians: {with_rules - without:+.3f} ms/message ({(with_rules / without - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()

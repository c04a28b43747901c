"""Benchmarks 1, 2 and 5: Q&A throughput and latency, safe (AES) mode, memory per worker.

Starts each server on loopback in turn, replays distinct signed "议程" messages with wrk (64 connections,
10 s by default) and prints one table, also written to bench/RESULTS.md:

- baseline (a): the thinnest FastAPI + wechatpy webhook (bench/baselines/thin_app.py), uvicorn, 2 workers;
- baseline (b): WeRoBot 1.13 under gunicorn, 2 workers (its own virtualenv, bench/.venv-werobot);
- eventbot ``serve --workers 2`` on a fresh SQLite file, and on a fresh PostgreSQL database with Redis,
  each in plain and in AES (safe) mode; RSS of each worker idle and after the plain run.

Run: ``.venv/bin/python bench/qa_throughput.py`` (needs wrk: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.harness import (  # noqa: E402
    APP_ID,
    BENCH_DIR,
    BENCH_NOW,
    ENCODING_AES_KEY,
    EVENTBOT_SERVE,
    OUT_DIR,
    REDIS_URL,
    REPO_ROOT,
    TOKEN,
    WrkResult,
    bench_postgres_database,
    eventbot_environment,
    free_port,
    machine_section,
    process_tree_cpu_seconds,
    run_wrk,
    running,
    write_pool,
    write_section,
)
from bot.devtools.simulator import encrypted_push, push_xml  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.wechat import SafeModeCrypto, sign  # noqa: E402
from models import texts  # noqa: E402

KEYWORD = "议程"
WEROBOT_VENV = BENCH_DIR / ".venv-werobot"
WEROBOT_REQUIREMENTS = ["werobot==1.13.*", "gunicorn"]
TARGETS = {"vs_werobot": 1.5, "vs_thin": 0.9, "p99_ms": 50.0, "aes_vs_plain": 0.7, "rss_mb": 150.0}


@dataclass
class Measurement:
    name: str
    result: WrkResult
    idle_rss_mb: list[float] = field(default_factory=list)
    loaded_rss_mb: list[float] = field(default_factory=list)
    # CPU time the server's processes spent per request under load: unlike req/s, hardly moved by other
    # work on the machine (wrk's own share is not counted).
    cpu_us_per_request: float = 0.0


def agenda_answer() -> str:
    """The text eventbot answers to 议程 at BENCH_NOW; the baselines answer exactly this."""
    settings = load_settings(config_path=REPO_ROOT / "config.toml", wechat_token=TOKEN)
    event = settings.content.current_event(datetime.fromisoformat(BENCH_NOW))
    return texts.agenda(event, settings.tz)


def text_pushes(count: int, crypto: SafeModeCrypto | None = None) -> Iterator[tuple[str, str]]:
    """``count`` distinct signed pushes asking for the agenda: own openid and MsgId each, fresh timestamps."""
    run = uuid.uuid4().hex[:8]
    first_msg_id = int(time.time() * 1000) * 1000
    for index in range(count):
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        params = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        body = push_xml(f"o-bench-{run}-{index}", "text", {"Content": KEYWORD, "MsgId": first_msg_id + index})
        if crypto is not None:
            body, params = encrypted_push(crypto, body, params)
        yield "/wechat?" + "&".join(f"{name}={value}" for name, value in params.items()), body


def werobot_python() -> Path:
    """The WeRoBot virtualenv's interpreter, created on first use (WeRoBot's pins stay out of .venv)."""
    python = WEROBOT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(WEROBOT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *WEROBOT_REQUIREMENTS], check=True)
    return python


def warm_up(url: str, crypto: SafeModeCrypto | None, count: int = 200) -> None:
    """A few requests so that lazy imports and connection pools are in place, and one reply checked."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for target, body in text_pushes(count, crypto):
            response = client.post(target, content=body.encode())
            if response.status_code != 200 or "<xml>" not in response.text:
                raise RuntimeError(f"{url} did not answer a signed push: {response.status_code} {response.text[:200]}")


def measure(name: str, command: list[str], env: dict[str, str], args, *, aes: bool = False,
            ready_path: str = "/healthz", memory: bool = False, workers: int = 2) -> Measurement:
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    crypto = SafeModeCrypto(TOKEN, ENCODING_AES_KEY, APP_ID) if aes else None
    log = OUT_DIR / f"{name.replace(' ', '_').replace('+', '')}.log"
    with running(name, command, port=port, env=env, ready_path=ready_path, log=log, workers=workers) as server:
        idle = server.worker_rss_mb() if memory else []
        warm_up(server.url, crypto)
        pool = OUT_DIR / "pool.txt"
        write_pool(pool, text_pushes(args.pool, crypto))
        cpu_before = process_tree_cpu_seconds(server.process.pid)
        result, raw = run_wrk(server.url, pool, connections=args.connections, duration=args.duration)
        cpu_us = (process_tree_cpu_seconds(server.process.pid) - cpu_before) / max(result.requests, 1) * 1e6
        (OUT_DIR / f"{log.stem}.wrk.txt").write_text(raw)
        loaded = server.worker_rss_mb() if memory else []
    measurement = Measurement(name, result, idle, loaded, cpu_us)
    print(f"  {name}: {result.requests_per_second:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
          f"p99 {result.p99_ms:.2f} ms, {cpu_us:.0f} µs CPU/request, errors {result.errors}, "
          f"pool wraps {result.pool_wraps}", flush=True)
    return measurement


def eventbot_runs(backend: str, database_url: str, redis_url: str, args, scratch: Path) -> list[Measurement]:
    measurements = []
    for aes in (False, True):
        metrics_dir = Path(tempfile.mkdtemp(dir=scratch, prefix="metrics-"))
        env = eventbot_environment(database_url, redis_url, aes=aes, metrics_dir=metrics_dir)
        name = f"eventbot {backend}{' AES' if aes else ''}"
        measurements.append(measure(name, EVENTBOT_SERVE, env, args, aes=aes, memory=not aes))
    return measurements


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}×" if denominator else "n/a"


def table(measurements: list[Measurement]) -> str:
    by_name = {m.name: m for m in measurements}
    thin, werobot = by_name["baseline thin FastAPI+wechatpy"], by_name["baseline WeRoBot 1.13 gunicorn"]
    rows = [
        "| configuration | req/s | p50 ms | p99 ms | errors | vs thin | vs WeRoBot | AES vs plain "
        "| CPU µs/request | CPU vs thin | CPU vs WeRoBot | RSS/worker idle → after (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in measurements:
        r = m.result
        plain = by_name.get(m.name.removesuffix(" AES")) if m.name.endswith(" AES") else None
        rss = ", ".join(f"{idle:.0f} → {after:.0f}" for idle, after in zip(m.idle_rss_mb, m.loaded_rss_mb))
        rows.append(
            f"| {m.name} | {r.requests_per_second:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.errors}{f' ({r.error_detail})' if r.error_detail else ''} | "
            f"{ratio(r.requests_per_second, thin.result.requests_per_second)} | "
            f"{ratio(r.requests_per_second, werobot.result.requests_per_second)} | "
            f"{ratio(r.requests_per_second, plain.result.requests_per_second) if plain else ''} | "
            f"{m.cpu_us_per_request:.0f} | {ratio(thin.cpu_us_per_request, m.cpu_us_per_request)} | "
            f"{ratio(werobot.cpu_us_per_request, m.cpu_us_per_request)} | {rss} |"
        )
    return "\n".join(rows)


def verdicts(measurements: list[Measurement]) -> list[str]:
    """Each target of issue 7 against the figures: met or missed."""
    by_name = {m.name: m for m in measurements}
    thin = by_name["baseline thin FastAPI+wechatpy"].result.requests_per_second
    werobot = by_name["baseline WeRoBot 1.13 gunicorn"].result.requests_per_second
    lines = []
    for m in measurements:
        if not m.name.startswith("eventbot"):
            continue
        r = m.result
        checks = [(f"p99 {r.p99_ms:.1f} ms ≤ {TARGETS['p99_ms']:.0f} ms", r.p99_ms <= TARGETS["p99_ms"]),
                  (f"errors {r.errors} = 0", r.errors == 0)]
        if m.name.endswith(" AES"):
            plain = by_name[m.name.removesuffix(" AES")].result.requests_per_second
            checks.append((f"{ratio(r.requests_per_second, plain)} plain ≥ {TARGETS['aes_vs_plain']}×",
                           r.requests_per_second >= TARGETS["aes_vs_plain"] * plain))
        else:
            checks += [
                (f"{ratio(r.requests_per_second, werobot)} WeRoBot ≥ {TARGETS['vs_werobot']}×",
                 r.requests_per_second >= TARGETS["vs_werobot"] * werobot),
                (f"{ratio(r.requests_per_second, thin)} thin ≥ {TARGETS['vs_thin']}×",
                 r.requests_per_second >= TARGETS["vs_thin"] * thin),
                (f"max RSS {max(m.loaded_rss_mb + m.idle_rss_mb, default=0):.0f} MB ≤ {TARGETS['rss_mb']:.0f} MB",
                 max(m.loaded_rss_mb + m.idle_rss_mb, default=0) <= TARGETS["rss_mb"]),
            ]
        lines.append(f"- {m.name}: " + "; ".join(f"{'met' if ok else 'MISSED'}: {text}" for text, ok in checks))
    return lines


def write_results(measurements: list[Measurement], args) -> str:
    report = f"""## Q&A throughput, safe mode, memory (benchmarks 1, 2, 5: `bench/qa_throughput.py`)

Load: wrk, {args.connections} connections, 2 threads, {args.duration} s per configuration, replaying distinct
correctly signed text messages "{KEYWORD}" (each its own openid and MsgId, timestamps fresh for the run;
see `bench/replay_pool.lua`). Every server runs 2 worker processes. An error is a failed connection, a
timeout, a non-2xx answer, or a 200 answer that is not a passive reply (`success` instead of the agenda).

{table(measurements)}

Targets (issue 7):

{chr(10).join(verdicts(measurements))}

Baselines: (a) `bench/baselines/thin_app.py`: signature check, wechatpy parse, fixed agenda text, no
de-duplication, database or logging (the ceiling of our stack); (b) `bench/baselines/werobot_app.py`:
WeRoBot 1.13, sessions off, gunicorn sync workers. eventbot runs its real path for a question: signature
and freshness checks, XML parse with DTDs refused, the check that the follower is outside any registration form (an
indexed read of SQLite, or one Redis `MGET` for the pushes of one event-loop turn), the routers' filters and the handler (at most once a second
per question: the answer is the same for everyone), the follower's activity queued for the batched write
behind, rendering, one JSON log line and the metrics per request. No ledger entry: a question's retry is
answered again (messages with effects keep the ledger; see benchmark 3).
"""
    write_section("machine", machine_section())
    write_section("qa-throughput", report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per configuration (>= 10)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pool", type=int, default=100_000, help="distinct signed requests per configuration")
    parser.add_argument("--skip-postgresql", action="store_true", help="only the SQLite configuration")
    args = parser.parse_args()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    answer_file = OUT_DIR / "agenda-answer.txt"
    answer_file.write_text(agenda_answer(), encoding="utf-8")
    baseline_env = os.environ | {"WECHAT_TOKEN": TOKEN, "BENCH_ANSWER_FILE": str(answer_file)}
    baselines = BENCH_DIR / "baselines"
    python = REPO_ROOT / ".venv" / "bin" / "python"
    uvicorn_flags = ["--workers", "2", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]

    measurements = []
    print("baselines", flush=True)
    measurements.append(measure(
        "baseline thin FastAPI+wechatpy",
        [str(python), "-m", "uvicorn", "thin_app:app", "--host", "127.0.0.1", "--port", "{port}", *uvicorn_flags],
        baseline_env | {"PYTHONPATH": str(baselines)}, args,
    ))
    gunicorn = werobot_python().parent / "gunicorn"
    measurements.append(measure(
        "baseline WeRoBot 1.13 gunicorn",
        [str(gunicorn), "--workers", "2", "--bind", "127.0.0.1:{port}", "--chdir", str(baselines), "werobot_app:application"],
        baseline_env, args, ready_path="/",
    ))
    with tempfile.TemporaryDirectory(prefix="eventbot-bench-") as scratch:
        print("eventbot on SQLite", flush=True)
        measurements += eventbot_runs("SQLite", f"sqlite:///{scratch}/bench.db", "", args, Path(scratch))
        if not args.skip_postgresql:
            print("eventbot on PostgreSQL + Redis", flush=True)
            with bench_postgres_database() as database_url:
                measurements += eventbot_runs("PostgreSQL+Redis", database_url, REDIS_URL, args, Path(scratch))

    print()
    print(write_results(measurements, args))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

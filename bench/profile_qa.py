"""Profile one eventbot worker under the Q&A load with py-spy; writes a flame graph and the top functions.

Run: ``.venv/bin/python bench/profile_qa.py [--backend postgresql]`` (py-spy: ``.venv/bin/pip install py-spy``;
it needs ptrace, so run as root or with CAP_SYS_PTRACE). Output: bench/out/profile-<backend>.svg and
profile-<backend>.txt (functions by share of samples). Only the thread holding the GIL is sampled
(``--gil``): that is where CPU time goes; waiting on the database shows up as latency, not here.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    EVENTBOT,
    OUT_DIR,
    REDIS_URL,
    bench_postgres_database,
    eventbot_environment,
    free_port,
    run_wrk,
    running,
    write_pool,
)
from bench.qa_throughput import text_pushes, warm_up  # noqa: E402

PY_SPY = Path(sys.executable).parent / "py-spy"


def profile(database_url: str, redis_url: str, backend: str, seconds: int, scratch: Path) -> None:
    port = free_port()
    env = eventbot_environment(database_url, redis_url, aes=False, metrics_dir=Path(tempfile.mkdtemp(dir=scratch)))
    command = [str(EVENTBOT), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    # One worker, so the profile sees every request; uvicorn still forks it from a master.
    with running(f"profile {backend}", command, port=port, env=env, ready_path="/healthz",
                 log=OUT_DIR / f"profile-{backend}.log", workers=1) as server:
        warm_up(server.url, None)
        pool = OUT_DIR / "pool.txt"
        write_pool(pool, text_pushes(60_000))
        (worker,) = server.worker_pids()
        outputs = {}
        for fmt, suffix in (("flamegraph", "svg"), ("raw", "txt")):
            outputs[fmt] = OUT_DIR / f"profile-{backend}.{suffix}"

        def record(fmt: str) -> None:
            subprocess.run([str(PY_SPY), "record", "-p", str(worker), "-d", str(seconds), "-r", "200", "-f", fmt,
                            "-o", str(outputs[fmt]), "--nonblocking", "--gil"], check=True, capture_output=True)

        recorders = [threading.Thread(target=record, args=(fmt,)) for fmt in outputs]
        for recorder in recorders:
            recorder.start()
        result, _raw = run_wrk(server.url, pool, connections=64, duration=seconds)
        for recorder in recorders:
            recorder.join()
    print(f"{backend}: {result.requests_per_second:.0f} req/s with 1 worker, p99 {result.p99_ms:.1f} ms")
    print(summarise(outputs["raw"]))


def summarise(collapsed: Path, top: int = 25) -> str:
    """Functions by inclusive share of samples, from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + samples
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])[:top]
    return "\n".join(f"{100 * samples / total:5.1f}%  {frame}" for frame, samples in ranked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eventbot-profile-") as scratch:
        if args.backend == "sqlite":
            profile(f"sqlite:///{scratch}/bench.db", "", "sqlite", args.seconds, Path(scratch))
        else:
            with bench_postgres_database() as url:
                profile(url, REDIS_URL, "postgresql", args.seconds, Path(scratch))


if __name__ == "__main__":
    main()

"""What the benchmark scripts share: servers as subprocesses, signed request pools, wrk, RSS, a bench database.

Everything runs on loopback. A server is started with its own environment, waited for on a health URL,
and stopped by its process id (never by name).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench"
OUT_DIR = BENCH_DIR / "out"
EVENTBOT = REPO_ROOT / ".venv" / "bin" / "eventbot"
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "bench-token"
APP_ID = "wx0123456789abcdef"
# A fixed 43-character EncodingAESKey for the bench only (never a real account's key).
ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


# Six days before the shipped meetup: registration open, the agenda the upcoming event's.
BENCH_NOW = "2023-03-20T10:00:00+08:00"
EVENTBOT_SERVE = [str(EVENTBOT), "serve", "--host", "127.0.0.1", "--port", "{port}", "--workers", "2"]


def eventbot_environment(database_url: str, redis_url: str, *, aes: bool, metrics_dir: Path,
                         config: Path = REPO_ROOT / "config.toml") -> dict[str, str]:
    """The environment of an ``eventbot serve`` under test: this process's, minus any eventbot settings."""
    environment = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("WECHAT_", "EVENTBOT_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_"))
    }
    environment |= {
        "WECHAT_TOKEN": TOKEN,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EVENTBOT_REDIS_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
        "EVENTBOT_CONFIG": str(config),
        "EVENTBOT_NOW": BENCH_NOW,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    if aes:
        environment |= {"WECHAT_APP_ID": APP_ID, "WECHAT_ENCODING_AES_KEY": ENCODING_AES_KEY}
    return environment


def config_with_capacity(capacity: int) -> Path:
    """A copy of config.toml (in bench/out) whose first event has ``capacity`` seats."""
    text, replaced = re.subn(r"^capacity = \d+", f"capacity = {capacity}", (REPO_ROOT / "config.toml").read_text(),
                             count=1, flags=re.MULTILINE)
    if replaced != 1:
        raise SystemExit("config.toml has no capacity line to change")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"config-capacity-{capacity}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A server process started for a benchmark."""

    name: str
    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the master that run the app, not helper processes).

        uvicorn with one worker has no children: the master serves, and is returned.
        """
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        workers = []
        for pid in map(int, children):
            with contextlib.suppress(FileNotFoundError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                if "resource_tracker" not in command:
                    workers.append(pid)
        return workers or [self.process.pid]

    def worker_rss_mb(self) -> list[float]:
        return [rss_mb(pid) for pid in self.worker_pids()]


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for {pid}")


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) that process ``pid`` and its children (uvicorn's workers) have used so far."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextlib.contextmanager
def running(name: str, command: list[str], *, port: int, env: dict[str, str], ready_path: str, log: Path,
            cwd: Path = REPO_ROOT, workers: int = 2) -> Iterator[Server]:
    """Start ``command``, wait until ``ready_path`` answers and all workers are up, stop it afterwards."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        server = Server(name, process, port)
        try:
            wait_ready(server, ready_path, workers, log)
            yield server
        finally:
            # The whole session: the master and its workers, by process group of the process we started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_ready(server: Server, path: str, workers: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + path, timeout=1).status_code < 500 and len(server.worker_pids()) >= workers:
                # Let every worker finish importing, so idle RSS is measured after start-up.
                time.sleep(1.0)
                return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout} s; see {log}")


@contextlib.contextmanager
def bench_postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards; yields its URL."""
    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"eventbot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    error_detail: str
    pool_wraps: int

    @classmethod
    def parse(cls, output: str) -> WrkResult:
        def latency(percentile: str) -> float:
            match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
            if not match:
                raise ValueError(f"no {percentile}% latency in wrk output:\n{output}")
            value, unit = float(match.group(1)), match.group(2)
            return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

        socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        not_replies = re.search(r"^not-a-reply (\d+)$", output, re.MULTILINE)
        # wrk counts a closed keep-alive connection as a read error; a server that closes after each response
        # (gunicorn's sync workers) shows them without any request failing, so only connect/write/timeout count.
        counted = {
            "connect": int(socket_errors.group(1)) if socket_errors else 0,
            "write": int(socket_errors.group(3)) if socket_errors else 0,
            "timeout": int(socket_errors.group(4)) if socket_errors else 0,
            "non-2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "not-a-reply": int(not_replies.group(1)) if not_replies else 0,
        }
        detail = ", ".join(f"{name} {count}" for name, count in counted.items() if count)
        return cls(
            requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            p50_ms=latency("50"),
            p99_ms=latency("99"),
            requests=int(re.search(r"(\d+) requests in", output).group(1)),
            errors=sum(counted.values()),
            error_detail=detail,
            pool_wraps=int(re.search(r"^pool-wraps (\d+)$", output, re.MULTILINE).group(1)),
        )


def write_pool(path: Path, requests: Iterable[tuple[str, str]]) -> int:
    """Write (path with query, body) pairs for replay_pool.lua, one per line; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as pool:
        for target, body in requests:
            if "\n" in body or "\t" in body:
                raise ValueError("a pool body must fit on one line without tabs")
            pool.write(f"{target}\t{body}\n")
            count += 1
    return count


def run_wrk(url: str, pool: Path, *, connections: int, duration: int, threads: int = 2) -> tuple[WrkResult, str]:
    """Run wrk against ``url`` replaying the request pool file; returns the parsed result and raw output."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
        "-s", str(BENCH_DIR / "replay_pool.lua"), url, "--", str(pool), str(threads),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return WrkResult.parse(output), output


def machine_description() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "cpu": cpu,
        "memory": subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.rstrip(),
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
        if shutil.which("wrk") else "not installed",
    }


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, target: str,
                body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 POST on a kept-alive connection; returns (status, body)."""
    writer.write(
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return status, await reader.readexactly(length)


async def _replay_conversations(port: int, conversations: list[list[Callable[[], tuple[str, bytes]]]],
                                connections: int) -> list[tuple[int, int, float, bytes]]:
    queue: asyncio.Queue = asyncio.Queue()
    for index, conversation in enumerate(conversations):
        queue.put_nowait((index, conversation))
    results: list[tuple[int, int, float, bytes]] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                index, conversation = queue.get_nowait()
                for step, build in enumerate(conversation):
                    target, body = build()
                    started = time.perf_counter()
                    status, answer = await _post(reader, writer, f"127.0.0.1:{port}", target, body)
                    results.append((index, step, time.perf_counter() - started, answer if status == 200 else b""))
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return results


def replay_conversations(port: int, conversations: list[list[Callable[[], tuple[str, bytes]]]],
                         connections: int) -> list[tuple[int, int, float, bytes]]:
    """Post each conversation's requests in order, ``connections`` conversations at a time.

    A request is built just before it is sent (fresh timestamp and signature). Returns one
    (conversation, step, seconds, answer) per request; the answer is b"" unless the status was 200.
    A small asyncio HTTP/1.1 client rather than wrk: a follower's next step must wait for the last reply.
    """
    return asyncio.run(_replay_conversations(port, conversations, connections))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


RESULTS = BENCH_DIR / "RESULTS.md"


def run_on_backends(run: Callable[[str, str, str, Path], object], *, sqlite: bool, prefix: str) -> list:
    """``run(backend, database_url, redis_url, scratch)`` on SQLite (when asked) and on PostgreSQL + Redis."""
    results = []
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        if sqlite:
            results.append(run("SQLite", f"sqlite:///{scratch}/bench.db", "", Path(scratch)))
        with bench_postgres_database() as database_url:
            results.append(run("PostgreSQL+Redis", database_url, REDIS_URL, Path(scratch)))
    return results


def publish(section: str, text: str) -> None:
    """Write a benchmark's section and the machine description to RESULTS.md, and print the section."""
    write_section("machine", machine_section())
    write_section(section, text)
    print()
    print(text)


def write_section(name: str, markdown: str) -> None:
    """Put ``markdown`` into bench/RESULTS.md as section ``name``, replacing that section's last figures.

    Each benchmark script owns its sections, so running one script keeps the others' figures.
    """
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        current = before + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(current, encoding="utf-8")


def machine_section() -> str:
    machine = machine_description()
    return f"""## Machine

Measured {machine['date']} on {machine['nproc']} CPUs ({machine['cpu']}), Linux {machine['kernel']},
Python {machine['python']}, {machine['wrk']}. Everything on loopback: the load generator shares the CPUs
with the servers (and, while these figures were taken, with other test runs on the same machine).

```
$ free -h
{machine['memory']}
```
"""

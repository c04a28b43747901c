"""Real server processes for tests: a free loopback port, and waiting until a started server answers."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.polling import wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, url: str, log: Path, path: str = "/healthz") -> None:
    """Return once ``url`` + ``path`` answers 200; fail with the end of ``log`` if the process exits first."""
    def serving() -> bool:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            return httpx.get(f"{url}{path}", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(serving, timeout=60, what=f"the server at {url} to serve")

"""One Prefect server for a whole run of the DAG.

Without PREFECT_API_URL every stage process starts Prefect's temporary server, which costs
seconds per process (benchmarks/RESULTS.md). `shared_server` starts one `prefect server start`
on a free loopback port, points this process and its children (DVC, the stages it runs) at it,
and ends it with its whole process group when the run ends, also on an error or Ctrl-C. A stage
run by hand without it still works: it falls back to the temporary server."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

STARTUP_TIMEOUT_S = 180  # a fresh database migrates first; slow on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, grace_s: float = 10) -> None:
    """End `process` and its process group (server workers, flow runs) in bounded time."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace_s)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers that outlived their leader


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def running_server(log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A `prefect server start` on a free loopback port, output to `log`; yields its API URL."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not healthy(api_url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start (exit {server.poll()}); log: {log}")
            time.sleep(0.5)
        yield api_url
    finally:
        stop_group(server)


@contextmanager
def shared_server(log: Path) -> Iterator[str]:
    """Reuse the server PREFECT_API_URL names, else start one for the duration of the block
    and export its URL to this process's environment (children inherit it)."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the server is stopped too.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with running_server(log) as api_url:
            os.environ["PREFECT_API_URL"] = api_url
            try:
                yield api_url
            finally:
                os.environ.pop("PREFECT_API_URL", None)
    finally:
        signal.signal(signal.SIGTERM, previous)

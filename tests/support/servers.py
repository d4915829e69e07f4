"""Real server processes for the race, crash and browser tests: migrate, start, wait, stop, kill.

A server is gunicorn in its own session (so its own process group); stopping
it sends SIGTERM to the group, then SIGKILL, and waits until the group is
gone, so no worker outlives the test even if the master died first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
# The venv's scripts sit beside its python; do not resolve the symlink.
BIN = Path(sys.executable).parent


class ServerError(RuntimeError):
    """The server did not start or did not stop."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, secret_key: str, base_url: str = "", **extra: str) -> dict[str, str]:
    """Return this process's environment without ONCECAL_* settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONCECAL_")}
    env.update(
        ONCECAL_DATABASE_URL=database_url,
        ONCECAL_SECRET_KEY=secret_key,
        ONCECAL_BASE_URL=base_url,
        PYTHONUNBUFFERED="1",
    )
    env.update({f"ONCECAL_{k}": v for k, v in extra.items()})
    return env


def run_flask(env: Mapping[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one `flask --app app ...` command to its end; return it with its output."""
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def migrate(env: Mapping[str, str], timeout: float = 60) -> None:
    """Create or upgrade the schema of env's database through the real migrations."""
    result = run_flask(env, "db", "upgrade", timeout=timeout)
    if result.returncode != 0:
        raise ServerError(f"flask db upgrade failed ({result.returncode}):\n{result.stdout}{result.stderr}")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self, last: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-last:]
        except OSError:
            return ""

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's live child processes (its workers)."""
        return [pid for pid, ppid, _pgrp in _live_processes() if ppid == self.process.pid]


def _live_processes() -> Iterator[tuple[int, int, int]]:
    """Yield (pid, ppid, process group) of every process that is not a zombie."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        state, ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if state not in ("Z", "X"):
            yield int(entry.name), int(ppid), int(pgrp)


def start_server(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    workers: int = 4,
    app: str = "app:create_app()",
    timeout: float = 60,
    attempts: int = 3,
    port: int | None = None,
) -> Server:
    """Start gunicorn on a free port (or on ``port``) and return once /healthz answers 200.

    ONCECAL_BASE_URL is set to the server's own URL unless env gives one.
    A free port taken between picking and binding is retried on another port.
    """
    for attempt in range(1, attempts + 1):
        chosen = port or free_port()
        url = f"http://127.0.0.1:{chosen}"
        run_env = {**env, "ONCECAL_BASE_URL": env.get("ONCECAL_BASE_URL") or url}
        log_path = log_dir / f"gunicorn-{chosen}-{attempt}-{time.monotonic_ns()}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "-w",
                    str(workers),
                    "-b",
                    f"127.0.0.1:{chosen}",
                    "--graceful-timeout",
                    "5",
                    app,
                ],
                cwd=PROJECT_ROOT,
                env=run_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(url, process, log_path)
        try:
            _wait_until_ready(server, workers, timeout)
        except ServerError:
            stop_server(server)
            if "Address already in use" in server.log() and attempt < attempts and port is None:
                continue
            raise
        return server
    raise AssertionError("unreachable")


# The server `make run` starts (its Makefile recipe is checked to say the same).
MAKE_RUN_SERVER = ("flask", "--app", "app", "serve")


def start_make_run_server(
    env: Mapping[str, str], log_dir: Path, *, own_base_url: bool = True, timeout: float = 60
) -> Server:
    """Start the server as `make run` does, on a free port, and return once /healthz answers 200.

    ONCECAL_BASE_URL is set to the server's own URL unless env gives one or
    ``own_base_url`` is false (then absolute URLs come from each request).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base_url = env.get("ONCECAL_BASE_URL") or (url if own_base_url else "")
    log_path = log_dir / f"serve-{port}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / MAKE_RUN_SERVER[0]), *MAKE_RUN_SERVER[1:], "--port", str(port)],
            cwd=PROJECT_ROOT,
            env={**env, "ONCECAL_BASE_URL": base_url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(url, process, log_path)
    try:
        _wait_until_ready(server, 0, timeout)
    except ServerError:
        stop_server(server)
        raise
    return server


def _wait_until_ready(server: Server, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"the server exited with {server.process.returncode}:\n{server.log()}")
        try:
            healthy = requests.get(f"{server.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            healthy = False
        if healthy and len(server.worker_pids()) >= workers:
            return
        time.sleep(0.05)
    raise ServerError(f"the server at {server.url} not ready after {timeout}s:\n{server.log()}")


def stop_server(server: Server, grace: float = 10) -> None:
    """Stop gunicorn and everything in its process group, then reap it."""
    stop_group(server.process, grace)


def stop_group(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the process group led by ``process``, then SIGKILL it; wait until it is gone."""
    pgid = process.pid  # start_new_session made it the group leader
    _signal_group(pgid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    kill_group(process, grace)


def kill_group(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGKILL (kill -9) every process of the group led by ``process``; wait until none is left."""
    pgid = process.pid
    _signal_group(pgid, signal.SIGKILL)
    process.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            raise ServerError(f"processes of group {pgid} survived SIGKILL")
        time.sleep(0.02)


def group_size(process: subprocess.Popen[bytes]) -> int:
    """Return how many live processes the group led by ``process`` has."""
    return sum(pgrp == process.pid for _pid, _ppid, pgrp in _live_processes())


def start_worker(env: Mapping[str, str], log_dir: Path, *, poll: float = 0.05) -> subprocess.Popen[bytes]:
    """Start the outbox worker (`flask --app app worker`) in its own process group."""
    log_path = log_dir / f"worker-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(BIN / "flask"), "--app", "app", "worker", "--poll", str(poll)],
            cwd=PROJECT_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    # Not os.killpg(pgid, 0): it also counts zombies nobody has reaped yet.
    return any(pgrp == pgid for _pid, _ppid, pgrp in _live_processes())


@contextmanager
def running_server(env: Mapping[str, str], log_dir: Path, *, workers: int = 4) -> Iterator[Server]:
    """Run a server for the block; always stop it afterwards."""
    server = start_server(env, log_dir, workers=workers)
    try:
        yield server
    finally:
        stop_server(server)

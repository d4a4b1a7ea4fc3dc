"""A real `longshore serve` for the SDK's tests, and helpers to steer it.

Needs ``LONGSHORE_BIN``: the `longshore` binary. The server runs on
``LONGSHORE_SDK_TEST_DATABASE_URL`` when it is set (a PostgreSQL database
of its own), else on a SQLite file in a temporary directory. Each test
works in a pool and queue of its own, so tests share one server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

# Short timings, so that leases, retries and sessions end within a test's
# patience (the same as the Rust tests use).
QUICK = {
    "LONGSHORE_LOG": "warn",
    "LONGSHORE_WORKER__LEASE": "2s",
    "LONGSHORE_WORKER__HEARTBEAT": "500ms",
    "LONGSHORE_WORKER__IDLE_MAX": "200ms",
    "LONGSHORE_WORKER__MAINTENANCE_INTERVAL": "200ms",
    "LONGSHORE_WORKER__SCHEDULER_INTERVAL": "200ms",
    "LONGSHORE_WORKER__CANCEL_GRACE": "1s",
    "LONGSHORE_RETRY__BASE": "100ms",
    "LONGSHORE_RETRY__MAX": "200ms",
    "LONGSHORE_GRPC__SESSION_TIMEOUT": "3s",
}

PATIENCE = 30.0


class Server:
    """A running `longshore serve`, and the CLI pointed at its database."""

    def __init__(self, binary: str, workdir: str, env: Dict[str, str]) -> None:
        self.binary = binary
        self.workdir = workdir
        self.env = env
        self.process: Optional[subprocess.Popen] = None
        self.gateway = ""
        self.api = ""

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.workdir, "serve.err"), "wb"),
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        api = re.search(r"listening on (http://[^,]+)", line)
        gateway = re.search(r"agents' gateway on (https?://[^,\s]+)", line)
        if not api or not gateway:
            with open(os.path.join(self.workdir, "serve.err")) as err:
                raise RuntimeError("serve did not start: %r\n%s" % (line, err.read()))
        self.api, self.gateway = api.group(1), gateway.group(1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=PATIENCE)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [self.binary, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        if check and done.returncode != 0:
            raise AssertionError("longshore %s failed: %s" % (" ".join(args), done.stderr))
        return done

    def ok(self, *args: str) -> str:
        return self.cli(*args).stdout.strip()

    def enqueue(self, actor: str, queue: str, args: Any = None, *more: str) -> str:
        """Enqueues one task; its id."""
        return self.ok(
            "enqueue", actor, "--any-actor", "--queue", queue, "--args", json.dumps(args or {}), *more
        )

    def show(self, task_id: str) -> Dict[str, Any]:
        return json.loads(self.ok("tasks", "show", task_id, "--json"))

    def pool(self, queue: str, labels: str = "") -> Tuple[str, str]:
        """A pool serving ``queue``, and a token for it: both names."""
        name = "p-" + uuid.uuid4().hex[:10]
        more = ["--labels", labels] if labels else []
        self.ok("pools", "add", name, "--queues", queue, *more)
        return name, self.ok("agents", "tokens", "create", "--name", name, "--pool", name)


def wait_until(what: str, check: Callable[[], Any], patience: float = PATIENCE) -> Any:
    """Calls ``check`` until it returns something true; fails after ``patience``."""
    deadline = time.monotonic() + patience
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("waited %.0f s for %s" % (patience, what))
        time.sleep(0.05)


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("LONGSHORE_BIN")
    if not binary:
        pytest.fail("set LONGSHORE_BIN to the longshore binary (scripts/python-sdk.sh does)")
    workdir = tempfile.mkdtemp(prefix="longshore-test-python-")
    env = dict(os.environ)
    env.update(QUICK)
    url = os.environ.get("LONGSHORE_SDK_TEST_DATABASE_URL")
    env["LONGSHORE_DATABASE_URL"] = url or "sqlite://%s/longshore.db" % workdir
    s = Server(binary, workdir, env)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def queue():
    """A queue name of the test's own."""
    return "q-" + uuid.uuid4().hex[:10]


class Running:
    """An agent served on a thread of its own; stopped (drained) at the end."""

    def __init__(self, agent) -> None:
        import asyncio

        self.agent = agent
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._asyncio = asyncio
        self.thread.start()

    def _run(self) -> None:
        try:
            self._asyncio.run(self.agent.serve())
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e

    def stop(self) -> None:
        wait_until("the agent's loop to start", lambda: self.agent._stop is not None or not self.thread.is_alive())
        self.agent.stop()
        self.thread.join(PATIENCE)
        assert not self.thread.is_alive(), "the agent did not stop"


@pytest.fixture
def start_agent():
    started: List[Running] = []

    def start(agent) -> Running:
        running = Running(agent)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()

"""The Python SDK against a real server: what a handler can do, and what
the server records of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading

import pytest

from conftest import PATIENCE, wait_until
from longshore_agent import Agent, Fatal, Refused


def make_agent(server, pool, token, **more):
    more.setdefault("concurrency", 4)
    return Agent(server.gateway, pool, token, **more)


def finished(server, task_id):
    """The task's record once it is in a final state."""

    def check():
        shown = server.show(task_id)
        return shown if shown["task"]["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_until("task %s to finish" % task_id, check)


def messages(lines):
    return [line["message"] for line in lines]


def test_a_handler_succeeds_and_its_lines_are_logged_under_its_execution(server, queue, start_agent):
    pool, token = server.pool(queue)
    agent = make_agent(server, pool, token)

    @agent.actor("greet")
    async def greet(ctx):
        ctx.info("hello %s" % ctx.args["name"])
        ctx.info("attempt %d of %d, execution %d" % (ctx.attempt, ctx.max_attempts, ctx.execution))

    @agent.actor("greet_sync")
    def greet_sync(ctx):
        ctx.info("hello from a thread, %s" % ctx.args["name"])

    start_agent(agent)
    first = server.enqueue("greet", queue, {"name": "ada"})
    second = server.enqueue("greet_sync", queue, {"name": "grace"})
    shown = finished(server, first)
    assert shown["task"]["state"] == "succeeded", shown
    assert shown["task"]["status"] == "successful", shown
    lines = shown["logs"]["current"]
    assert messages(lines) == ["hello ada", "attempt 1 of 20, execution 1"], lines
    assert {line["execution"] for line in lines} == {1}, lines
    shown = finished(server, second)
    assert shown["task"]["state"] == "succeeded", shown
    assert messages(shown["logs"]["current"]) == ["hello from a thread, grace"], shown


def test_a_warning_is_reported_without_a_retry(server, queue, start_agent):
    pool, token = server.pool(queue)
    agent = make_agent(server, pool, token)

    @agent.actor("check")
    async def check(ctx):
        ctx.warning("3 of 40 users have no e-mail address")

    start_agent(agent)
    shown = finished(server, server.enqueue("check", queue))
    assert shown["task"]["state"] == "succeeded", shown
    assert shown["task"]["status"] == "warning", shown
    assert shown["task"]["attempt"] == 1, shown
    assert shown["task"]["execution"] == 1, shown


def test_an_exception_is_retried_and_fatal_is_not(server, queue, start_agent):
    pool, token = server.pool(queue)
    agent = make_agent(server, pool, token)

    @agent.actor("flaky")
    async def flaky(ctx):
        if ctx.attempt < 3:
            raise ConnectionError("directory unreachable (attempt %d)" % ctx.attempt)
        ctx.info("synced")

    @agent.actor("doomed")
    def doomed(ctx):
        raise Fatal("user 42 does not exist")

    start_agent(agent)
    flaky_id = server.enqueue("flaky", queue)
    doomed_id = server.enqueue("doomed", queue)
    shown = finished(server, flaky_id)
    assert shown["task"]["state"] == "succeeded", shown
    assert shown["task"]["attempt"] == 3, shown
    previous = shown["logs"]["previous"]
    text = json.dumps(previous)
    assert "ConnectionError: directory unreachable (attempt 1)" in text, previous
    assert "ConnectionError: directory unreachable (attempt 2)" in text, previous
    assert messages(shown["logs"]["current"]) == ["synced"], shown

    shown = finished(server, doomed_id)
    assert shown["task"]["state"] == "failed", shown
    assert shown["task"]["attempt"] == 1, shown
    assert shown["task"]["last_error"] == "user 42 does not exist", shown


def test_a_running_handler_is_cancelled_by_an_operator(server, queue, start_agent):
    pool, token = server.pool(queue)
    agent = make_agent(server, pool, token)
    started = threading.Event()
    seen = []

    @agent.actor("long")
    async def long(ctx):
        ctx.info("started")
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append(ctx.cancel_reason)
            raise

    start_agent(agent)
    task_id = server.enqueue("long", queue)
    wait_until("the handler to start", started.is_set)
    server.ok("tasks", "cancel", task_id)
    shown = finished(server, task_id)
    assert shown["task"]["state"] == "cancelled", shown
    assert seen == ["operator"], seen
    assert "cancelled by an operator" in messages(shown["logs"]["current"]), shown


def test_tasks_queued_ahead_wait_for_a_slot_and_go_back_unrun_at_a_stop(server, queue, start_agent):
    pool, token = server.pool(queue)
    agent = make_agent(server, pool, token, concurrency=1, prefetch=2, drain_timeout=600.0)
    ran = []

    @agent.actor("long")
    async def long(ctx):
        ran.append(ctx.task_id)
        await asyncio.sleep(3600)

    start_agent(agent)
    first = server.enqueue("long", queue)
    wait_until("the first task to run", lambda: ran == [first])
    later = [server.enqueue("long", queue) for _ in range(3)]

    def held():
        return [t for t in later if server.show(t)["task"]["state"] == "running"]

    # One slot busy for an hour: two more wait on the agent, leased to it.
    queued = wait_until("two more to be the agent's", lambda: (lambda h: h if len(h) == 2 else None)(held()))
    server.ok("tasks", "cancel", queued[0])
    shown = finished(server, queued[0])
    assert shown["task"]["state"] == "cancelled", shown
    assert messages(shown["logs"]["current"]) == ["cancelled by an operator before it started"], shown
    rest = [t for t in later if t != queued[0]]
    wait_until("its room to take the last task", lambda: len(held()) == 2 and len(set(held()) & set(rest)) == 2)
    assert ran == [first], ran

    # A stop: the queued ones come back at once, unrun, their attempts
    # unused, while the first drains.
    agent.stop()
    wait_until("the queued tasks to come back", lambda: all(server.show(t)["task"]["state"] == "queued" for t in rest))
    for task_id in rest:
        task = server.show(task_id)["task"]
        assert task["attempt"] == 0, task
    assert server.show(first)["task"]["state"] == "running"
    assert ran == [first], ran
    # Cancelling the first ends the drain.
    server.ok("tasks", "cancel", first)
    assert finished(server, first)["task"]["state"] == "cancelled"


def test_prefetch_must_be_auto_or_a_count(server, queue):
    pool, token = server.pool(queue)
    for bad in (-1, 10_001, "lots", 1.5, True):
        with pytest.raises(ValueError, match="prefetch"):
            make_agent(server, pool, token, prefetch=bad)


def test_handlers_are_time_limited_async_and_sync(server, queue, start_agent):
    pool, token = server.pool(queue)
    agent = make_agent(server, pool, token)
    release = threading.Event()
    sync_returned = threading.Event()

    @agent.actor("slow")
    async def slow(ctx):
        await asyncio.sleep(3600)

    @agent.actor("slow_sync")
    def slow_sync(ctx):
        # Cannot be stopped from outside: runs until the test lets it go.
        release.wait(PATIENCE)
        sync_returned.set()

    start_agent(agent)
    slow_id = server.enqueue("slow", queue, {}, "--time-limit", "1s", "--max-attempts", "1")
    sync_id = server.enqueue("slow_sync", queue, {}, "--time-limit", "1s", "--max-attempts", "1")
    for task_id in (slow_id, sync_id):
        shown = finished(server, task_id)
        assert shown["task"]["state"] == "failed", shown
        assert "time limit of 1s exceeded" in shown["task"]["last_error"], shown
    # The sync handler still runs: reported failed, its slot still taken.
    assert not sync_returned.is_set()
    release.set()
    wait_until("the sync handler to return", sync_returned.is_set)


def test_an_expired_token_is_refused_with_a_clear_message(server, queue):
    pool, _ = server.pool(queue)
    server.ok("agents", "tokens", "create", "--name", pool + "-brief", "--pool", pool, "--expires", "1s")
    brief = server.ok("agents", "tokens", "create", "--name", pool + "-brief2", "--pool", pool, "--expires", "1s")

    def expired():
        listed = server.ok("agents", "tokens", "list")
        return any(line.startswith(pool + "-brief2") and "expired" in line for line in listed.splitlines())

    wait_until("the token to expire", expired)
    agent = make_agent(server, pool, brief)
    with pytest.raises(Refused) as refused:
        asyncio.run(asyncio.wait_for(agent.serve(), PATIENCE))
    assert "expired" in str(refused.value), refused.value


def test_a_python_agent_and_a_rust_agent_share_one_pool(server, queue, start_agent):
    pool, token = server.pool(queue)
    agent = make_agent(server, pool, token, agent_id="py-" + pool)

    @agent.actor("sleep")
    async def sleep(ctx):
        # The built-in `sleep` actor, written again in Python.
        await asyncio.sleep(ctx.args["ms"] / 1000)
        ctx.info("slept in python")

    start_agent(agent)
    env = dict(server.env, LONGSHORE_AGENT_TOKEN=token)
    rust = subprocess.Popen(
        [server.binary, "agent", "--gateway", server.gateway, "--pool", pool, "--id", "rs-" + pool, "--concurrency", "4"],
        cwd=server.workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ids = server.ok(
            "enqueue", "sleep", "--queue", queue, "--args", json.dumps({"ms": 100}), "--count", "40"
        ).split()
        owners = set()
        for task_id in ids:
            shown = finished(server, task_id)
            assert shown["task"]["state"] == "succeeded", shown
            owners.add("python" if "slept in python" in messages(shown["logs"]["current"]) else "rust")
        assert owners == {"python", "rust"}, owners
    finally:
        rust.terminate()
        rust.wait(PATIENCE)


EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "hello.py")


@contextlib.contextmanager
def example_agent(server, queue):
    """examples/hello.py as its own process, serving a pool of ``queue``;
    killed at the end if still running."""
    pool, token = server.pool(queue)
    env = dict(os.environ, LONGSHORE_GATEWAY=server.gateway, LONGSHORE_POOL=pool, LONGSHORE_AGENT_TOKEN=token)
    process = subprocess.Popen(
        [sys.executable, EXAMPLE], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_running(server, task_id):
    wait_until("task %s to run" % task_id, lambda: server.show(task_id)["task"]["state"] == "running")


def test_sigterm_drains_the_example_agent(server, queue):
    with example_agent(server, queue) as process:
        sums = finished(server, server.enqueue("checksum", queue, {"text": ""}))
        long = server.enqueue("greet", queue, {"name": "ada", "ms": 1500})
        wait_running(server, long)
        process.terminate()
        _, err = process.communicate(timeout=PATIENCE)
        assert process.returncode == 0, err
    shown = server.show(long)
    assert shown["task"]["state"] == "succeeded", (shown, err)
    assert messages(shown["logs"]["current"]) == ["hello, ada"], shown
    assert sums["task"]["status"] == "warning", sums
    assert messages(sums["logs"]["current"]) == ["the text is empty", "checksum 0"], sums


def test_a_second_sigterm_hands_back_what_runs_and_stops(server, queue):
    with example_agent(server, queue) as process:
        # Ten minutes: only a hand-back ends it within the test.
        long = server.enqueue("greet", queue, {"name": "ada", "ms": 600000})
        wait_running(server, long)
        process.terminate()
        # The second signal only once the first is taken (the agent says so).
        said = []
        while not any("stopping:" in line for line in said):
            line = process.stderr.readline()
            assert line, "the agent exited at the first signal: %s" % "".join(said)
            said.append(line)
        process.terminate()
        _, rest = process.communicate(timeout=PATIENCE)
        err = "".join(said) + rest
        assert process.returncode == 0, err
    task = server.show(long)["task"]
    # Handed back: queued again, its attempt given back, and not given
    # to the stopping agent again (execution 1 is its only one).
    assert task["state"] == "queued", (json.dumps(task), err)
    assert task["attempt"] == 0, task
    assert task["execution"] == 1, task
    assert "second stop signal" in err, err


class Proxy:
    """A TCP proxy to the gateway whose connections the test can cut."""

    def __init__(self, upstream: str) -> None:
        import socket

        host, port = upstream.split("//", 1)[1].rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.sockets = []
        self.accepted = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
                self.accepted += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        import socket

        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets = []

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_the_agent_reconnects_after_its_connection_is_cut(server, queue, start_agent):
    pool, token = server.pool(queue)
    proxy = Proxy(server.gateway)
    try:
        agent = Agent(proxy.address, pool, token, concurrency=2, reconnect_max=1.0)

        @agent.actor("greet")
        async def greet(ctx):
            ctx.info("hello %s" % ctx.args["name"])

        start_agent(agent)
        first = finished(server, server.enqueue("greet", queue, {"name": "before"}))
        assert first["task"]["state"] == "succeeded", first
        proxy.cut()
        second = finished(server, server.enqueue("greet", queue, {"name": "after"}))
        assert second["task"]["state"] == "succeeded", second
        assert messages(second["logs"]["current"]) == ["hello after"], second
        assert proxy.accepted >= 2, "the agent did not connect again"
    finally:
        proxy.close()

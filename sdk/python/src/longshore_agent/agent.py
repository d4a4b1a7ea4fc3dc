"""The agent: connects to a gateway, takes tasks of its pool, runs them.

One session is one gRPC stream (see ``proto/longshore/agent/v1/agent.proto``
in the Longshore repository, the contract this module follows). The agent
says how many slots it has free (and how much room its queue of tasks
claimed ahead has); the server assigns that many tasks; each
execution is announced (``Started``), its log lines streamed, and it ends
in one ``Result`` that the server records only while the lease is still
this agent's. A session that breaks is opened again with backoff, and the
results it could not deliver are sent again on the next one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import random
import signal
import socket
import time
import traceback
import uuid
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Dict, Iterable, Optional, Tuple, Union

import grpc

from . import context as c
from ._protocol import agent_pb2 as pb
from .context import Fatal, TaskContext

__all__ = ["Agent", "Refused", "PROTOCOL_VERSION"]

#: The protocol version this SDK speaks.
PROTOCOL_VERSION = 1
VERSION = "0.1.0"

#: The most tasks an agent may hold queued beyond its slots.
MOST_PREFETCH = 10_000
#: How many queued tasks per slot ``prefetch="auto"`` allows at most.
AUTO_PER_SLOT = 3

_METHOD = "/longshore.agent.v1.AgentGateway/Session"
_OPEN_TIMEOUT = 10.0
_REFUSED = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
}
_LEVELS = {c.INFO: pb.LEVEL_INFO, c.WARNING: pb.LEVEL_WARNING, c.ERROR: pb.LEVEL_ERROR}
_REASONS = {
    pb.Cancel.REASON_OPERATOR: c.OPERATOR,
    pb.Cancel.REASON_LEASE_LOST: c.LEASE_LOST,
    pb.Cancel.REASON_TIME_LIMIT: c.TIME_LIMIT,
}

log = logging.getLogger("longshore_agent")

Handler = Callable[[TaskContext], Union[None, Awaitable[None]]]
Key = Tuple[str, int]


class Refused(Exception):
    """The gateway refused the session for a reason that retrying will not
    change (bad, expired or revoked token, wrong pool, unknown protocol);
    the message is the server's."""


class _Lost(Exception):
    """The session broke: connect again."""


class Agent:
    """An agent of one pool.

    ``gateway`` is ``http://host:port`` or ``https://host:port`` (TLS,
    trusting the system's roots, or only ``ca_certificate`` when given, as
    PEM bytes). ``token`` is an agent token made with ``longshore agents
    tokens create --pool POOL``.

    Handlers are registered by actor name with :meth:`actor`. An ``async
    def`` handler runs on the agent's event loop and is cancelled
    (``asyncio.CancelledError``) when its time limit ends or an operator
    cancels its task. A plain ``def`` handler runs in a thread of its own;
    Python cannot stop a thread from outside, so at its time limit (or on
    cancellation) the execution is reported at once, and its slot stays
    taken until the function returns. It should check
    :attr:`TaskContext.cancelled` when it can.

    ``prefetch`` is how many tasks the agent holds queued beyond its free
    slots, so that a slot that frees starts its next task without waiting
    for the gateway's round trip to the database: ``"auto"`` (the
    default) lets the gateway choose, up to three per slot, from the
    handler and database times it measures (none for long handlers); a
    count fixes it, ``0`` turns it off. A queued task is leased to this
    agent; a stop or a drain hands the queued ones back at once.
    """

    def __init__(
        self,
        gateway: str,
        pool: str,
        token: str,
        *,
        labels: Iterable[str] = (),
        concurrency: int = 8,
        prefetch: Union[int, str] = "auto",
        agent_id: Optional[str] = None,
        ca_certificate: Optional[bytes] = None,
        time_limit: float = 600.0,
        drain_timeout: float = 30.0,
        reconnect_max: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if prefetch == "auto":
            self._prefetch, self._prefetch_auto = min(concurrency * AUTO_PER_SLOT, MOST_PREFETCH), True
        elif isinstance(prefetch, int) and not isinstance(prefetch, bool) and 0 <= prefetch <= MOST_PREFETCH:
            self._prefetch, self._prefetch_auto = prefetch, False
        else:
            raise ValueError('prefetch is "auto" or a count from 0 to %d, not %r' % (MOST_PREFETCH, prefetch))
        if gateway.startswith("http://"):
            self._target, self._tls = gateway[len("http://") :], False
        elif gateway.startswith("https://"):
            self._target, self._tls = gateway[len("https://") :], True
        else:
            raise ValueError("the gateway is http://HOST:PORT or https://HOST:PORT, not %r" % gateway)
        if ca_certificate is not None and not self._tls:
            raise ValueError("a CA certificate is for an https:// gateway, not %r" % gateway)
        self._target = self._target.rstrip("/")
        self.gateway = gateway
        self.pool = pool
        self.labels = list(labels)
        self.concurrency = concurrency
        self.agent_id = agent_id or "%s-%s" % (socket.gethostname(), uuid.uuid4().hex[:8])
        self._token = token
        self._ca = ca_certificate
        self.time_limit = time_limit
        self.drain_timeout = drain_timeout
        self.reconnect_max = reconnect_max
        self._handlers: Dict[str, Handler] = {}
        self._stop: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._threads: Optional[concurrent.futures.ThreadPoolExecutor] = None
        # What outlives a session: results not yet acknowledged, the
        # executions still running (sync ones keep running after a
        # session is lost), and an operator's drain.
        self._unanswered: Dict[Key, pb.AgentMessage] = {}
        self._running: Dict[Key, "_Execution"] = {}
        self._drained = False
        # Set by a second stop signal: hand back what runs now.
        self._hurry = False
        self._session: Optional["_Session"] = None

    # -- registration ----------------------------------------------------

    def actor(self, name: str) -> Callable[[Handler], Handler]:
        """Registers the decorated function as the handler of actor ``name``."""

        def register(fn: Handler) -> Handler:
            self.register(name, fn)
            return fn

        return register

    def register(self, name: str, fn: Handler) -> None:
        """Registers ``fn`` as the handler of actor ``name``."""
        if name in self._handlers:
            raise ValueError("actor %r is registered twice" % name)
        self._handlers[name] = fn

    # -- running ---------------------------------------------------------

    def run(self) -> None:
        """Runs until SIGTERM or SIGINT (then drains; a second signal
        hands back what still runs and stops), or until refused."""
        asyncio.run(self.serve(handle_signals=True))

    def _signalled(self) -> None:
        assert self._stop is not None
        if self._stop.is_set():
            log.warning("second stop signal: handing back what runs and stopping now")
            self._hurry = True
        self._stop.set()

    def stop(self) -> None:
        """Asks a running agent to drain and stop; safe from any thread, and
        a no-op once the agent has stopped."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass  # the loop closed meanwhile: the agent has stopped

    async def serve(self, handle_signals: bool = False) -> None:
        """Runs until :meth:`stop` (or a signal when ``handle_signals``).

        Raises :class:`Refused` when the gateway refuses the session for
        good. On stop, what runs is given ``drain_timeout`` to finish;
        what still runs then is handed back to the queue, unrun.
        """
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="longshore-task"
        )
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._signalled)
        pause = 0.2
        try:
            while True:
                session = _Session(self)
                self._session = session
                try:
                    await session.run()
                    return
                except _Lost as lost:
                    log.warning("session with %s lost: %s", self.gateway, lost)
                    if session.opened:
                        pause = 0.2
                finally:
                    self._session = None
                    for execution in list(self._running.values()):
                        execution.cancel(c.LEASE_LOST)
                if self._stop.is_set():
                    return
                wait = min(pause, self.reconnect_max) * random.uniform(0.8, 1.2)
                pause = min(pause * 2, self.reconnect_max)
                try:
                    await asyncio.wait_for(self._stop.wait(), wait)
                    return
                except asyncio.TimeoutError:
                    pass
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    self._loop.remove_signal_handler(sig)
            # Threads still in a handler are not waited for here; the
            # interpreter waits for them at exit.
            self._threads.shutdown(wait=False)

    # -- used by sessions and executions ---------------------------------

    def _send(self, message: pb.AgentMessage) -> None:
        session = self._session
        if session is not None:
            session.send(message)

    def _emit_log(self, key: Key, level: str, message: str) -> None:
        """A handler's log line, from any thread."""
        line = pb.AgentMessage(
            log=pb.Log(
                task_id=key[0],
                execution=key[1],
                level=_LEVELS[level],
                message=message,
                at_unix_ms=int(time.time() * 1000),
            )
        )
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._send(line)
        else:
            loop.call_soon_threadsafe(self._send, line)

    def _finished(self, key: Key, outcome: Optional[pb.Result]) -> None:
        """An execution's result is known (its slot may still be taken)."""
        if outcome is None:
            return
        message = pb.AgentMessage(result=outcome)
        self._unanswered[key] = message
        self._send(message)

    def _freed(self, key: Key) -> None:
        """An execution's slot is free again."""
        self._running.pop(key, None)
        session = self._session
        if session is not None:
            session.slot_freed()

    def _start(self, assign: pb.Assign) -> None:
        key = (assign.task_id, assign.execution)
        try:
            args = json.loads(assign.args_json) if assign.args_json else {}
        except ValueError as e:
            self._send(pb.AgentMessage(started=pb.Started(task_id=key[0], execution=key[1])))
            self._finished(key, _failed(key, "arguments are not JSON: %s" % e, fatal=True))
            self._freed(key)
            return
        limit = assign.time_limit_ms / 1000.0 if assign.time_limit_ms > 0 else self.time_limit
        ctx = TaskContext(
            task_id=assign.task_id,
            execution=assign.execution,
            attempt=assign.attempt,
            max_attempts=assign.max_attempts,
            actor=assign.actor,
            queue=assign.queue,
            args=args,
            time_limit=limit,
            emit=lambda level, message: self._emit_log(key, level, message),
        )
        execution = _Execution(self, key, ctx, self._handlers.get(assign.actor), limit)
        self._running[key] = execution
        self._send(pb.AgentMessage(started=pb.Started(task_id=key[0], execution=key[1])))
        execution.start()


class _Execution:
    """One assigned execution, from start to its result and its free slot.

    Driven by callbacks, not a coroutine of its own: the handler's future
    finishing, the time limit's timer, and a cancellation.
    """

    def __init__(
        self, agent: Agent, key: Key, ctx: TaskContext, handler: Optional[Handler], limit: float
    ) -> None:
        self.agent = agent
        self.key = key
        self.ctx = ctx
        self.handler = handler
        self.limit = limit
        self.reported = False
        self.sync = False
        self.work: Optional[asyncio.Future] = None
        self.timer: Optional[asyncio.TimerHandle] = None

    def start(self) -> None:
        ctx, key = self.ctx, self.key
        if self.handler is None:
            known = ", ".join(sorted(self.agent._handlers)) or "none"
            message = "no handler for actor `%s` on agent %s (it has: %s)" % (
                ctx.actor,
                self.agent.agent_id,
                known,
            )
            ctx.error(message)
            self.report(_failed(key, message, fatal=False))
            self.agent._freed(key)
            return
        loop = asyncio.get_running_loop()
        if inspect.iscoroutinefunction(self.handler):
            self.work = loop.create_task(self.handler(ctx))  # type: ignore[arg-type]
        else:
            assert self.agent._threads is not None
            self.sync = True
            self.work = loop.run_in_executor(self.agent._threads, self.handler, ctx)
        self.timer = loop.call_later(max(ctx.remaining(), 0), self.cancel, c.TIME_LIMIT)
        self.work.add_done_callback(self._done)

    def cancel(self, reason: str) -> None:
        """Asks the execution to stop; an async handler is cancelled now, a
        sync one is reported now and keeps its slot until it returns."""
        if not self.ctx._cancel(reason) or self.work is None or self.work.done():
            return
        if self.sync:
            self.report(self._interrupted())
        else:
            self.work.cancel()

    def report(self, outcome: Optional[pb.Result]) -> None:
        if not self.reported:
            self.reported = True
            self.agent._finished(self.key, outcome)

    def _done(self, work: asyncio.Future) -> None:
        if self.timer is not None:
            self.timer.cancel()
        try:
            self.report(self._outcome(work))
        finally:
            self.agent._freed(self.key)

    def _interrupted(self) -> Optional[pb.Result]:
        """The result of an execution stopped for its context's reason."""
        ctx, key = self.ctx, self.key
        reason = ctx.cancel_reason
        if reason == c.LEASE_LOST:
            return None
        if reason == c.OPERATOR:
            ctx.info("cancelled by an operator")
            return pb.Result(task_id=key[0], execution=key[1], cancelled=pb.Cancelled())
        if reason == c.SHUTDOWN:
            ctx.warning(
                "interrupted: agent %s shut down; the task was returned to the queue"
                % self.agent.agent_id
            )
            return pb.Result(task_id=key[0], execution=key[1], handed_back=pb.HandedBack())
        error = "time limit of %s exceeded" % _seconds(self.limit)
        ctx.error(error)
        return _failed(key, error, fatal=False)

    def _outcome(self, work: asyncio.Future) -> Optional[pb.Result]:
        ctx, key = self.ctx, self.key
        if work.cancelled():
            return self._interrupted()
        error = work.exception()
        if error is None:
            return pb.Result(task_id=key[0], execution=key[1], succeeded=pb.Succeeded())
        if isinstance(error, asyncio.CancelledError) or (
            ctx.cancel_reason is not None and not isinstance(error, Fatal)
        ):
            return self._interrupted()
        fatal = isinstance(error, Fatal)
        text = str(error) if fatal else "%s: %s" % (type(error).__name__, error)
        detail = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        ctx.error("%s: %s\n%s" % ("failed (not retried)" if fatal else "failed", text, detail.rstrip()))
        return _failed(key, text, fatal=fatal)


class _Session:
    """One gRPC stream with the gateway."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.opened = False
        self.outbound: "asyncio.Queue[Optional[pb.AgentMessage]]" = asyncio.Queue()
        self.draining = agent._drained
        self.last_heard = time.monotonic()
        # Slots freed since the last Ready: said together, once the loop
        # has run what finished at the same moment.
        self.freed = 0
        # Assigned while every slot was busy: started in order as slots
        # free. Lost with the session (the gateway hands them back).
        self.queued: Deque[pb.Assign] = deque()

    def send(self, message: pb.AgentMessage) -> None:
        self.outbound.put_nowait(message)

    def slot_freed(self) -> None:
        if self.draining:
            return
        if self.queued:
            self.agent._start(self.queued.popleft())
        self._credit()

    def _credit(self) -> None:
        """A place (a slot, or room in the queue) is free again: said in
        the next Ready."""
        if self.draining:
            return
        self.freed += 1
        if self.freed == 1:
            asyncio.get_running_loop().call_soon(self._say_ready)

    def _say_ready(self) -> None:
        if self.freed and not self.draining:
            self.send(pb.AgentMessage(ready=pb.Ready(free=self.freed)))
        self.freed = 0

    async def _requests(self):
        while True:
            message = await self.outbound.get()
            if message is None:
                return
            yield message

    def _channel(self) -> grpc.aio.Channel:
        agent = self.agent
        if agent._tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=agent._ca)
            return grpc.aio.secure_channel(agent._target, credentials)
        return grpc.aio.insecure_channel(agent._target)

    async def run(self) -> None:
        agent = self.agent
        free = max(agent.concurrency - len(agent._running), 0) + agent._prefetch
        self.send(
            pb.AgentMessage(
                hello=pb.Hello(
                    protocol_version=PROTOCOL_VERSION,
                    agent_id=agent.agent_id,
                    pool=agent.pool,
                    labels=agent.labels,
                    actors=sorted(agent._handlers),
                    slots=agent.concurrency,
                    version="longshore-agent-python %s" % VERSION,
                    language="python",
                    prefetch=agent._prefetch,
                    prefetch_auto=agent._prefetch_auto,
                )
            )
        )
        async with self._channel() as channel:
            call = channel.stream_stream(
                _METHOD,
                request_serializer=pb.AgentMessage.SerializeToString,
                response_deserializer=pb.ServerMessage.FromString,
            )(self._requests(), metadata=(("authorization", "Bearer " + agent._token),))
            try:
                try:
                    first = await asyncio.wait_for(call.read(), _OPEN_TIMEOUT)
                except asyncio.TimeoutError:
                    raise _Lost("the gateway did not answer Hello within %s s" % _OPEN_TIMEOUT)
                if first is grpc.aio.EOF or first.WhichOneof("message") != "welcome":
                    raise _Lost("the gateway did not say Welcome")
                self.opened = True
                ping_every = max(first.welcome.ping_interval_ms, 100) / 1000.0
                log.info(
                    "connected to %s as %s (pool %s, %d slots)",
                    agent.gateway,
                    agent.agent_id,
                    agent.pool,
                    agent.concurrency,
                )
                for message in list(agent._unanswered.values()):
                    self.send(message)
                if not self.draining and free > 0:
                    self.send(pb.AgentMessage(ready=pb.Ready(free=free)))
                await self._loop(call, ping_every)
            except grpc.aio.AioRpcError as e:
                if e.code() in _REFUSED:
                    raise Refused(e.details() or str(e.code())) from None
                raise _Lost("%s: %s" % (e.code().name, e.details())) from None
            finally:
                self.outbound.put_nowait(None)
                call.cancel()

    async def _loop(self, call: Any, ping_every: float) -> None:
        """Reads the gateway's messages while a keeper pings, watches for
        silence and runs the stop; returns when a stop is done."""
        reader = asyncio.ensure_future(self._read(call))
        keeper = asyncio.ensure_future(self._keep(ping_every))
        try:
            done, _ = await asyncio.wait({reader, keeper}, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                finished.result()  # raises what ended the session
        finally:
            reader.cancel()
            keeper.cancel()

    async def _read(self, call: Any) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                raise _Lost("the gateway closed the stream")
            self.last_heard = time.monotonic()
            self._handle(message)

    async def _keep(self, ping_every: float) -> None:
        agent = self.agent
        assert agent._stop is not None
        # Twice the gateway's own session timeout: the gateway has handed
        # back what this agent held before the agent gives up.
        silence_limit = ping_every * 6
        stopping = asyncio.ensure_future(agent._stop.wait())
        try:
            while not stopping.done():
                self.send(pb.AgentMessage(ping=pb.Ping()))
                await asyncio.wait({stopping}, timeout=ping_every)
                self._check_silence(silence_limit)
            log.info("stopping: finishing %d running task(s), taking nothing more", len(agent._running))
            self.draining = True
            self.send(pb.AgentMessage(stopping=pb.Stopping()))
            self._hand_back_queued()
            hand_back_at = time.monotonic() + agent.drain_timeout
            give_up_at: Optional[float] = None
            next_ping = time.monotonic() + ping_every
            while agent._running or agent._unanswered:
                now = time.monotonic()
                if now >= next_ping:
                    self.send(pb.AgentMessage(ping=pb.Ping()))
                    next_ping = now + ping_every
                if give_up_at is None and (now >= hand_back_at or agent._hurry):
                    if agent._running:
                        log.warning("drain time is over: handing back %d task(s)", len(agent._running))
                    for execution in list(agent._running.values()):
                        execution.cancel(c.SHUTDOWN)
                    # A little longer for the results to be acknowledged.
                    give_up_at = now + 5.0
                if give_up_at is not None and now >= give_up_at:
                    return
                await asyncio.sleep(min(ping_every, 0.05))
                self._check_silence(silence_limit)
        finally:
            stopping.cancel()

    def _check_silence(self, limit: float) -> None:
        silent = time.monotonic() - self.last_heard
        if silent > limit:
            raise _Lost("the gateway sent nothing for %.1f s" % silent)

    def _handle(self, message: pb.ServerMessage) -> None:
        agent = self.agent
        kind = message.WhichOneof("message")
        if kind == "assign":
            if self.draining:
                # On its way before the gateway knew: back unrun.
                assign = message.assign
                key = (assign.task_id, assign.execution)
                handed_back = pb.Result(task_id=key[0], execution=key[1], handed_back=pb.HandedBack())
                agent._finished(key, handed_back)
                return
            if len(agent._running) < agent.concurrency:
                agent._start(message.assign)
            elif len(self.queued) < agent._prefetch:
                self.queued.append(message.assign)
            else:
                # More than this agent offered room for: back unrun.
                assign = message.assign
                log.warning("the gateway sent more tasks than this agent has room for; handing one back")
                key = (assign.task_id, assign.execution)
                agent._finished(key, pb.Result(task_id=key[0], execution=key[1], handed_back=pb.HandedBack()))
        elif kind == "cancel":
            key = (message.cancel.task_id, message.cancel.execution)
            reason = _REASONS.get(message.cancel.reason, c.OPERATOR)
            execution = agent._running.get(key)
            if execution is not None:
                execution.cancel(reason)
            else:
                self._cancel_queued(key, reason)
        elif kind == "recorded":
            recorded = message.recorded
            agent._unanswered.pop((recorded.task_id, recorded.execution), None)
            if not recorded.accepted:
                log.warning(
                    "the gateway refused the result of task %s (execution %d): %s",
                    recorded.task_id,
                    recorded.execution,
                    recorded.reason,
                )
        elif kind == "drain":
            log.warning(
                "drained by an operator: finishing %d running task(s), taking nothing more "
                "(restart the agent to end it)",
                len(agent._running),
            )
            self.draining = True
            agent._drained = True
            self._hand_back_queued()

    def _cancel_queued(self, key: Key, reason: str) -> None:
        """A queued task is cancelled: it never runs. An operator's cancel
        ends it; a time limit hands it back; a lost lease is the
        gateway's to hand back."""
        for assign in self.queued:
            if (assign.task_id, assign.execution) == key:
                self.queued.remove(assign)
                break
        else:
            return
        if reason == c.OPERATOR:
            self.agent._emit_log(key, c.INFO, "cancelled by an operator before it started")
            self.agent._finished(key, pb.Result(task_id=key[0], execution=key[1], cancelled=pb.Cancelled()))
        elif reason == c.TIME_LIMIT:
            self.agent._emit_log(key, c.INFO, "its time limit passed before it started; it was handed back")
            self.agent._finished(key, pb.Result(task_id=key[0], execution=key[1], handed_back=pb.HandedBack()))
        self._credit()

    def _hand_back_queued(self) -> None:
        """A stop or a drain: the queued tasks go back unrun, at once."""
        if self.queued:
            log.info("handing back %d task(s) queued ahead", len(self.queued))
        while self.queued:
            assign = self.queued.popleft()
            key = (assign.task_id, assign.execution)
            self.agent._finished(key, pb.Result(task_id=key[0], execution=key[1], handed_back=pb.HandedBack()))


def _failed(key: Key, error: str, *, fatal: bool) -> pb.Result:
    return pb.Result(task_id=key[0], execution=key[1], failed=pb.Failed(error=error, fatal=fatal))


def _seconds(value: float) -> str:
    return ("%ds" % value) if value == int(value) else ("%.3gs" % value)

"""What a handler sees of the task it runs, and how it says what happened."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Dict, Optional

#: Why an execution was asked to stop (:attr:`TaskContext.cancel_reason`).
OPERATOR = "operator"
TIME_LIMIT = "time_limit"
LEASE_LOST = "lease_lost"
SHUTDOWN = "shutdown"

INFO = "info"
WARNING = "warning"
ERROR = "error"


class Fatal(Exception):
    """Raised by a handler: the task fails now, whatever attempts remain.

    Any other exception fails the attempt and the server retries it with
    backoff while attempts remain.
    """


class TaskContext:
    """One execution of one task, as its handler sees it.

    Log lines go to the task's log under this execution and show in
    ``longshore tasks show``. Logging a warning or an error does not fail
    the task: it finishes without a retry, and its status reads *Warning*
    or *Error* — that is how a handler reports a problem that retrying
    would not solve.
    """

    def __init__(
        self,
        *,
        task_id: str,
        execution: int,
        attempt: int,
        max_attempts: int,
        actor: str,
        queue: str,
        args: Dict[str, Any],
        time_limit: float,
        emit: Callable[[str, str], None],
    ) -> None:
        self.task_id = task_id
        #: The execution number: grows with every run of the task, counted
        #: or not; log lines are grouped by it.
        self.execution = execution
        #: Which attempt this is (1 for the first), of :attr:`max_attempts`.
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.actor = actor
        self.queue = queue
        #: The task's arguments, as given at enqueue.
        self.args = args
        #: When the time limit ends, in :func:`time.monotonic` seconds.
        self.deadline = time.monotonic() + time_limit
        self._emit = emit
        # Written on the agent's event loop only; read from any thread.
        self._reason: Optional[str] = None
        self._waiters: Optional[asyncio.Event] = None

    def info(self, message: str) -> None:
        """Adds a line to the task's log."""
        self._emit(INFO, message)

    def warning(self, message: str) -> None:
        """Adds a warning: the task will finish with status *Warning*."""
        self._emit(WARNING, message)

    def error(self, message: str) -> None:
        """Adds an error: the task will finish with status *Error*, unretried."""
        self._emit(ERROR, message)

    @property
    def cancelled(self) -> bool:
        """Whether the execution has been asked to stop (safe from any thread)."""
        return self._reason is not None

    @property
    def cancel_reason(self) -> Optional[str]:
        """``"operator"``, ``"time_limit"``, ``"lease_lost"``, ``"shutdown"`` or None."""
        return self._reason

    def remaining(self) -> float:
        """Seconds left before the time limit (negative once past it)."""
        return self.deadline - time.monotonic()

    async def wait_cancelled(self) -> None:
        """Returns once the execution is asked to stop (from the agent's
        event loop; an async handler that is cancelled sees
        ``asyncio.CancelledError`` here)."""
        if self._reason is not None:
            return
        if self._waiters is None:
            self._waiters = asyncio.Event()
        await self._waiters.wait()

    def _cancel(self, reason: str) -> bool:
        """Asks the execution to stop; False if it already was. Called on
        the agent's event loop."""
        if self._reason is not None:
            return False
        self._reason = reason
        if self._waiters is not None:
            self._waiters.set()
        return True

"""Run Longshore tasks in Python.

An :class:`Agent` connects to a Longshore server's gRPC gateway with an
agent token for one pool, takes that pool's tasks and runs them with the
handlers registered for their actors::

    from longshore_agent import Agent, Fatal

    agent = Agent("http://127.0.0.1:50051", pool="python", token=token, concurrency=16)

    @agent.actor("resize")
    async def resize(ctx):
        ctx.info("resizing %s" % ctx.args["path"])

    agent.run()  # until SIGTERM, which drains
"""

from .agent import PROTOCOL_VERSION, Agent, Refused
from .context import Fatal, TaskContext

__all__ = ["Agent", "Fatal", "PROTOCOL_VERSION", "Refused", "TaskContext"]

"""A Python agent with two handlers: run it beside `longshore serve`.

    LONGSHORE_GATEWAY=http://127.0.0.1:50051 LONGSHORE_POOL=python \
    LONGSHORE_AGENT_TOKEN=$(cat python.token) python examples/hello.py
"""

import asyncio
import logging
import os
import time

from longshore_agent import Agent, Fatal

logging.basicConfig(level=logging.INFO)

agent = Agent(
    os.environ.get("LONGSHORE_GATEWAY", "http://127.0.0.1:50051"),
    pool=os.environ.get("LONGSHORE_POOL", "python"),
    token=os.environ["LONGSHORE_AGENT_TOKEN"],
    concurrency=int(os.environ.get("LONGSHORE_CONCURRENCY", "16")),
)


@agent.actor("greet")
async def greet(ctx):
    """Async: runs on the agent's event loop; cancelled at its time limit."""
    name = ctx.args.get("name")
    if not isinstance(name, str):
        raise Fatal("`name` must be a string")  # no retry: it would fail again
    await asyncio.sleep(ctx.args.get("ms", 0) / 1000)
    ctx.info("hello, %s" % name)


@agent.actor("checksum")
def checksum(ctx):
    """Sync: runs in a thread of its own; looks at ctx.cancelled now and then."""
    total = 0
    for i, byte in enumerate(ctx.args.get("text", "").encode()):
        if i % 4096 == 0 and ctx.cancelled:
            return
        total = (total + byte) % 65521
    if total == 0:
        ctx.warning("the text is empty")  # status Warning, not retried
    ctx.info("checksum %d" % total)
    time.sleep(ctx.args.get("ms", 0) / 1000)


if __name__ == "__main__":
    agent.run()  # SIGTERM or Ctrl-C: finishes what runs, then exits

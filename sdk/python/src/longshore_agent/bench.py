"""An agent whose one actor, ``bench``, does nothing: what
``longshore bench --workloads p`` runs to measure the SDK's own cost.

    LONGSHORE_AGENT_TOKEN=... python -m longshore_agent.bench \\
        --gateway http://127.0.0.1:50051 --pool bench_p --concurrency 16
"""

import argparse
import os
import sys

from .agent import Agent, Refused


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m longshore_agent.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True, help="http://HOST:PORT of the gateway")
    parser.add_argument("--pool", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--prefetch", default="auto", help="tasks held queued beyond the free slots: auto (default) or a count"
    )
    parser.add_argument("--id", default=None, help="the agent's id (default: host and a random suffix)")
    options = parser.parse_args()
    token = os.environ.get("LONGSHORE_AGENT_TOKEN")
    if not token:
        parser.error("set LONGSHORE_AGENT_TOKEN to an agent token of the pool")
    prefetch = options.prefetch if options.prefetch == "auto" else int(options.prefetch)
    agent = Agent(
        options.gateway,
        options.pool,
        token,
        concurrency=options.concurrency,
        prefetch=prefetch,
        agent_id=options.id,
    )

    @agent.actor("bench")
    async def bench(ctx):
        pass

    try:
        agent.run()
    except Refused as refused:
        print("refused: %s" % refused, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

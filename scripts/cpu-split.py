#!/usr/bin/env python3
"""CPU seconds by kind of process while a bench's agents or workers drain.

Run it beside `longshore bench --workloads s ...` on the same machine (it
reads /proc, Linux only). It waits until N processes of the fleet are up
(`agents`, the default: `longshore agent --gateway ...`; or `workers`:
`longshore worker --database-url ...`), then adds up the CPU time each kind of process used until the fleet is
gone: the fleet, the bench (which serves the agents' gateway), the local
PostgreSQL server's processes, and the rest; and how many cores the whole
machine kept busy over that window.

    scripts/cpu-split.py 4 agents &
    target/release/longshore bench --workloads s --processes 1 --agents 4 \\
        --bulk-tasks 100000 --database-url postgres://postgres@127.0.0.1:5432/postgres

The window opens when the fleet appears, a moment before its queue is
resumed, so it is slightly longer than the drain the bench reports.
Processes that end inside the window (PostgreSQL backends) are missed.
"""
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


FLEET = {"agents": " agent --gateway", "workers": " worker --database-url"}


def kind(cmd, fleet):
    if fleet in cmd:
        return "fleet"
    if " bench " in cmd:
        return "bench (and gateway)"
    if cmd.startswith("postgres"):
        return "postgres"
    return "other"


def processes(fleet):
    seen = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime and stime, the 14th and 15th fields of stat.
        seen[(pid, kind(cmd, fleet))] = (int(fields[11]) + int(fields[12])) / TICK
    return seen


def machine():
    with open("/proc/stat") as f:
        ticks = list(map(int, f.readline().split()[1:]))
    return sum(ticks) / TICK, (ticks[3] + ticks[4]) / TICK


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    fleet = FLEET[sys.argv[2] if len(sys.argv) > 2 else "agents"]
    while True:
        first = processes(fleet)
        if sum(1 for _, k in first if k == "fleet") >= size:
            break
        time.sleep(0.05)
    start, (total0, idle0) = time.time(), machine()
    last = first
    while True:
        time.sleep(0.2)
        now = processes(fleet)
        if not any(k == "fleet" for _, k in now):
            break
        last = now
    seconds = time.time() - start
    total1, idle1 = machine()
    used = {}
    for key, cpu in last.items():
        used[key[1]] = used.get(key[1], 0.0) + cpu - first.get(key, 0.0)
    busy = ((total1 - total0) - (idle1 - idle0)) / seconds
    print(f"window {seconds:.1f} s; the machine kept {busy:.2f} cores busy")
    for name, cpu in sorted(used.items()):
        print(f"  {name}: {cpu:.1f} CPU s, {cpu / seconds:.2f} cores")


if __name__ == "__main__":
    main()

"""Open-loop HTTP load: requests sent at a rate, whatever the answers take, as real users send
them (a closed loop would slow down with the service and hide its queue).

    python scripts/load.py --url http://10.0.0.3/ --phase 8:20 --phase 40:30 --out results.jsonl

Each `--phase RATE:SECONDS` sends RATE requests a second for SECONDS. Every request is one line
of JSON in --out: when it was sent (seconds from the start), how long it took, the status (or
the error) and the first line of the body (the webapp's hostname: which replica served it).
Progress goes to stderr every --every seconds: sent, answered, failed. `--stream` writes each
outcome as it is answered instead of all of them sorted at the end, and `--repeat` goes through
the phases again and again until the process is stopped (a long chaos run's steady load). Run
it where the service can be reached: in tests, inside the engine's network namespace
(`nsenter --net=...`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import asdict, dataclass
from typing import IO

import aiohttp


@dataclass
class Outcome:
    t: float
    latency: float
    status: int | None
    error: str | None
    by: str | None


def phases(text: list[str]) -> list[tuple[float, float]]:
    out = []
    for item in text:
        rate, _, seconds = item.partition(":")
        out.append((float(rate), float(seconds)))
    return out


async def one(
    http: aiohttp.ClientSession, url: str, t: float, done: list[Outcome], stream: IO[str] | None
) -> None:
    sent = time.monotonic()
    status: int | None = None
    error: str | None = None
    by: str | None = None
    try:
        async with http.get(url) as response:
            body = await response.text()
            status = response.status
            by = body.splitlines()[0] if body else ""
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:120]
    outcome = Outcome(round(t, 3), round(time.monotonic() - sent, 4), status, error, by)
    if stream is not None:
        stream.write(json.dumps(asdict(outcome)) + "\n")
        stream.flush()
    else:
        done.append(outcome)


async def progress(done: list[Outcome], sent: list[int], every: float, out: IO[str]) -> None:
    start = time.monotonic()
    while True:
        await asyncio.sleep(every)
        failed = sum(1 for o in done if o.status != 200)
        print(f"{time.monotonic() - start:6.1f}s  sent {sent[0]:6d}  answered "
              f"{len(done) - failed:6d}  failed {failed:4d}", file=out, flush=True)  # fmt: skip


async def run(
    url: str,
    plan: list[tuple[float, float]],
    limit: float,
    every: float,
    *,
    stream: IO[str] | None = None,
    repeat: bool = False,
) -> list[Outcome]:
    done: list[Outcome] = []
    sent = [0]
    limits = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(
        connector=limits, timeout=aiohttp.ClientTimeout(total=limit)
    ) as http:
        reporter = asyncio.create_task(progress(done, sent, every, sys.stderr)) if every else None
        try:
            async with asyncio.TaskGroup() as tg:
                start = time.monotonic()
                offset = 0.0
                while True:
                    for rate, seconds in plan:
                        for i in range(int(rate * seconds)):
                            at = offset + i / rate
                            delay = start + at - time.monotonic()
                            if delay > 0:
                                await asyncio.sleep(delay)
                            sent[0] += 1
                            tg.create_task(one(http, url, at, done, stream))
                        offset += seconds
                    if not repeat:
                        break
        finally:
            if reporter is not None:
                reporter.cancel()
    return sorted(done, key=lambda o: o.t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--phase", action="append", required=True, metavar="RATE:SECONDS")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a request may take")
    parser.add_argument("--every", type=float, default=0.0, help="progress every N s (0: none)")
    parser.add_argument("--out", help="JSON lines, one a request (default: stdout)")
    parser.add_argument("--stream", action="store_true", help="each outcome as it is answered")
    parser.add_argument("--repeat", action="store_true", help="the phases again until stopped")
    args = parser.parse_args()
    if args.stream:
        # Stopped from outside (a long run's end): what was answered is written already.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        target = open(args.out, "w") if args.out else sys.stdout
        asyncio.run(run(args.url, phases(args.phase), args.timeout, args.every, stream=target,
                        repeat=args.repeat))  # fmt: skip
        return 0
    done = asyncio.run(run(args.url, phases(args.phase), args.timeout, args.every,
                           repeat=args.repeat))  # fmt: skip
    target = open(args.out, "w") if args.out else sys.stdout
    try:
        for outcome in done:
            target.write(json.dumps(asdict(outcome)) + "\n")
    finally:
        if args.out:
            target.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench-check`: the regression gate on the reaction step (bench/gate.py), quick enough
for CI. Stores nothing; fails when a headline's ratio to the HPA's rules is more than 20 % worse
than in bench/results/reaction.txt."""

from __future__ import annotations

import asyncio
import sys

from bench import gate, reaction
from bench.__main__ import RESULTS


def main() -> int:
    results, every = asyncio.run(reaction.quick())
    print("Every run:")
    print(reaction.table(every, reaction.NEEDED))
    text = reaction.table(results, reaction.NEEDED)
    print("\nThe default policy's median run at each interval, and hpa's:")
    print(text)
    fresh = gate.headlines("reaction", text)
    stored = gate.headlines("reaction", (RESULTS / "reaction.txt").read_text())
    stored = {name: h for name, h in stored.items() if name.startswith("reaction step")}
    failed = gate.regressions(stored, fresh)
    for name, now in fresh.items():
        print(f"{name}: {now}; stored {stored[name]}" if name in stored else f"{name}: {now}")
    for line in failed:
        print(f"REGRESSION {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: every benchmark, one table each, printed and stored in bench/results/<name>.txt.
Figures stand beside a baseline measured in the same run; the engine benchmarks need DOCKER_HOST
(the Makefile starts the private engine). The README quotes these files, nothing else."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import platform
import sys
import time
from pathlib import Path

from bench import gate

RESULTS = Path(__file__).resolve().parent / "results"
ALL = ("policies", "sampling", "reaction", "compose", "mqtt", "soak", "swarm", "web", "zero",
       "page", "predict", "queues", "status", "scale")  # fmt: skip

APART = ("chaos",)
"""Run by name only (`make chaos`), never by a plain `make bench`."""


class _Tee(io.StringIO):
    """Prints as it goes and keeps a copy."""

    def write(self, text: str) -> int:
        sys.__stdout__.write(text)
        sys.__stdout__.flush()
        return super().write(text)


def main(argv: list[str]) -> int:
    """Runs the benchmarks named (all by default); 1 when a headline figure regressed against
    its stored table (bench/gate.py). The new table is stored either way: the diff shows it."""
    RESULTS.mkdir(exist_ok=True)
    failed: list[str] = []
    for name in [b for b in (*ALL, *APART) if b in argv] if argv else ALL:
        module = importlib.import_module(f"bench.{name}")
        tee = _Tee()
        # A package (bench/chaos) is named by its folder, a module by its file.
        source = f"bench/{name}" if hasattr(module, "__path__") else f"bench/{name}.py"
        with contextlib.redirect_stdout(tee):
            print(f"# {source}, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
                  f"{platform.machine()}, Python {platform.python_version()}")  # fmt: skip
            module.main()
        stored = RESULTS / f"{name}.txt"
        if stored.exists():
            before = gate.headlines(name, stored.read_text())
            failed += gate.regressions(before, gate.headlines(name, tee.getvalue()))
        stored.write_text(tee.getvalue())
    for line in failed:
        print(f"REGRESSION {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

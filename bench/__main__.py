"""`make bench`: every benchmark, one table each. Figures are ratios against a baseline measured in
the same run; the engine benchmarks need DOCKER_HOST (the Makefile starts the private engine)."""

from __future__ import annotations

import sys

from bench import policies


def main(argv: list[str]) -> None:
    wanted = set(argv) or {"policies", "sampling", "reaction", "soak"}
    if "policies" in wanted:
        policies.main()
    if "sampling" in wanted:
        from bench import sampling

        sampling.main()
    if "reaction" in wanted:
        from bench import reaction

        reaction.main()
    if "soak" in wanted:
        from bench import soak

        soak.main()


if __name__ == "__main__":
    main(sys.argv[1:])

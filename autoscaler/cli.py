"""`autoscaler run`: thin on purpose; settings are built here once and passed down."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from autoscaler.errors import AutoscalerError
from autoscaler.settings import Settings

logger = logging.getLogger(__name__)

GC_YOUNG = 10_000
"""Allocations between two collections of the garbage collector's youngest generation (CPython's
default: 700)."""


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in ("autoscaler", "policies"):
        logging.getLogger(name).setLevel(level)


def _loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if settings.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            logger.warning("uvloop is not installed; using the asyncio loop")
            return None
        return uvloop.new_event_loop
    return None


async def _serve(settings: Settings, agent: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def handle_exit(signum: int) -> None:
        if stop.is_set():
            # A second signal means "now": skip the drain.
            logger.warning("second %s: exiting without draining", signal.Signals(signum).name)
            os._exit(130)
        logger.info("%s: shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle_exit, signum)
    if agent:
        from autoscaler.backends.swarm.agents import run_agent

        collect_less()
        await run_agent(settings, stop)
    else:
        # Imported here: the terminal's commands (`status`, ...) start without the engine's code.
        from autoscaler.app import App

        app = App(settings, round_guard=collected_after)
        collect_less()
        await app.serve(stop)


def collect_less() -> None:
    """What the process holds from start-up to exit (modules, classes, settings) is left out of
    the cyclic garbage collector's walks, and its youngest generation is collected every GC_YOUNG
    allocations instead of 700. A round's samples and states live until the next round: at 700
    they outlived dozens of collections, were promoted to the oldest generation, and brought its
    full walks (over every object the process holds: at 500 services, the last 50 evaluations of
    each) every few rounds, each a pause of the whole process (bench/scale.py measures both)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 10, 10)


@contextlib.contextmanager
def collected_after() -> Iterator[None]:
    """A round runs with the cyclic garbage collector off; what it allocated is collected once
    the round is over, at the first allocation after it, while the process waits for the next
    round. A collection is a pause of the whole process: within a round it delayed every
    decision after it (at 500 services, a walk of the middle generation took hundreds of ms on
    a loaded host, a full one over a second: the round's slowest); after it, it delays nothing
    that was decided. Fewer collections in all, too: a round's allocations are walked once, not
    once every GC_YOUNG of them. (A collector already off, stays off.)"""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def run(settings: Settings, *, agent: bool = False) -> int:
    """`autoscaler run`, or (`agent`) `autoscaler agent`."""
    _configure_logging(settings.log_level)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
            runner.run(_serve(settings, agent))
    except AutoscalerError as exc:
        logger.error("%s", exc)
        return 1
    return 0


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.removeprefix("autoscaler."), value


def _simulate(args: argparse.Namespace) -> int:
    from autoscaler.control.spec import schedule_of
    from autoscaler.errors import LabelError
    from autoscaler.labels import PREFIX, ServiceKey
    from autoscaler.ops import simulate
    from policies.registry import PolicyError
    from policies.simulator import Model

    labels = {"cpu.target": "50", **dict(args.label)}
    # The schedule is the service's, not a policy's: its labels read as a service's are.
    windows = {PREFIX + k: labels.pop(k) for k in [k for k in labels if k.startswith("schedule.")]}
    policies = [args.policy, *(p for p in ("hpa", "step") if p != args.policy)]
    if args.min < 0:
        print("autoscaler simulate: --min is 0 or more", file=sys.stderr)
        return 2
    if args.min == 0 and "metric.target" not in labels:
        # As the labels have it: min 0 needs a metric, and a metric needs its target.
        print("autoscaler simulate: --min 0 needs --label metric.target=N: the trace's demand is "
              "then the service's metric too (what one replica should carry), which wakes it",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        simulate.check(policies, labels)
        model = Model(
            capacity=args.capacity,
            startup=args.startup,
            interval=args.interval,
            target=float(labels["cpu.target"]),
            minimum=args.min,
            maximum=args.max,
            schedule=schedule_of(ServiceKey("simulate", "trace"), windows),
            start=args.start,
        )
        results = simulate.run(args.trace, policies, labels, model, args.out)
    except (OSError, ValueError, PolicyError, LabelError) as exc:
        print(f"autoscaler simulate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(simulate.summaries(results), indent=2))
    else:
        print(simulate.summary_table(results))
        print(f"timelines and plot in {args.out}/")
    return 0


def _explain(args: argparse.Namespace, settings: Settings) -> int:
    from autoscaler.ops import client, explain

    try:
        status = client.fetch(settings.api, args.service)
    except AutoscalerError as exc:
        print(f"autoscaler explain: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2) if args.json else explain.render(status, args.last))
    return 0


def _replicas(args: argparse.Namespace, settings: Settings) -> int:
    from autoscaler.ops import client, explain

    try:
        status = client.fetch(settings.api)
    except AutoscalerError as exc:
        print(f"autoscaler replicas: {exc}", file=sys.stderr)
        return 1
    print(explain.replicas(status, args.project, compose_args=args.compose_args))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoscaler", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the autoscaler (settings from AUTOSCALER_* and .env)")
    commands.add_parser(
        "agent",
        help="sample this node's Swarm tasks and publish them over MQTT (one per node: a "
        "global service)",
    )
    exp = commands.add_parser(
        "explain",
        help="show a running autoscaler's recent decisions for a service, with their inputs",
    )
    exp.add_argument("service", help="project/service, or just the service name")
    exp.add_argument("--last", type=int, default=10, help="how many decisions (default 10)")
    exp.add_argument("--json", action="store_true", help="print the raw /status JSON")
    rep = commands.add_parser(
        "replicas",
        help="print each service's running replicas, from a running autoscaler",
        description="With --compose-args, as `--scale SERVICE=N` for `docker compose up`: a plain "
        "`up` removes the replicas its file does not list, so run "
        "`docker compose up -d $(autoscaler replicas --project P --compose-args)` to keep them.",
    )
    rep.add_argument("--project", help="only this Compose project's services")
    rep.add_argument(
        "--compose-args", action="store_true", help="print `--scale SERVICE=N ...` for Compose"
    )
    sim = commands.add_parser(
        "simulate",
        help="replay a demand trace (CSV time,demand in CPU cores) through a policy",
        description="Replays the trace through POLICY and the reference policies hpa and step, "
        "each taking the labels it understands; writes each replica timeline (CSV) and a plot "
        "(PNG), prints a summary.",
    )
    sim.add_argument("--trace", type=Path, required=True, help="CSV: time (s), demand (cores)")
    sim.add_argument("--policy", default="target-tracking")
    sim.add_argument(
        "--label", type=_label, action="append", default=[], metavar="KEY=VALUE",
        help="a service label, e.g. cpu.target=60, scale-down.stabilization=60s or "
        "'schedule.work=Mon-Fri 08:00-18:00 min=4' (repeatable)",
    )  # fmt: skip
    sim.add_argument("--capacity", type=float, default=1.0, help="cores per replica")
    sim.add_argument("--startup", type=float, default=10.0, help="seconds until a replica serves")
    sim.add_argument("--interval", type=float, default=5.0, help="seconds between decisions")
    sim.add_argument("--min", type=int, default=1)
    sim.add_argument("--max", type=int, default=20)
    sim.add_argument(
        "--start", type=datetime.fromisoformat, default=datetime(2026, 1, 5),
        help="when the trace starts, for schedule.<name> labels (default a Monday, 00:00)",
    )  # fmt: skip
    sim.add_argument("--out", type=Path, default=Path("simulation"), help="output folder")
    sim.add_argument("--json", action="store_true", help="print the summary as JSON, for scripts")
    _console_parsers(commands)
    return parser


def _duration(text: str) -> str:
    from autoscaler.ops.console import duration

    try:
        return duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _console_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """A running autoscaler from a terminal (ops/client.py): its services, events, controls."""
    st = commands.add_parser("status", help="each service a line: replicas, bounds, metrics, "
                             "phase, control, last action")  # fmt: skip
    st.add_argument("--watch", action="store_true", help="redraw as it changes (Ctrl-C ends)")
    st.add_argument("--project", help="only this Compose project's services")
    ev = commands.add_parser("events", help="a running autoscaler's recent events")
    ev.add_argument("service", nargs="?", help="only this service's (project/service or name)")
    ev.add_argument("--follow", action="store_true", help="then each as it comes (Ctrl-C ends)")
    ev.add_argument("--last", type=int, default=20, help="how many recent events (default 20)")
    for action, helps in (
        ("pause", "keep a service's count where it is"),
        ("hold", "keep a service at N replicas, within its min and max"),
        ("resume", "end a pause or hold: the autoscaler decides again"),
    ):
        cmd = commands.add_parser(action, help=helps)
        cmd.add_argument("service", help="project/service, or just the service name")
        if action == "hold":
            cmd.add_argument("replicas", type=int, metavar="N")
        if action != "resume":
            cmd.add_argument("--for", dest="lasting", type=_duration, metavar="D",
                             help="for a while (30m, 2h); until `resume` without")  # fmt: skip
        cmd.add_argument("--why", default="", help="the reason, told with the control")
        cmd.add_argument("--who", help="who asks (default $USER@hostname)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "simulate":
        return _simulate(args)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"autoscaler: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "explain":
        return _explain(args, settings)
    if args.command == "replicas":
        return _replicas(args, settings)
    if args.command in ("status", "events", "pause", "resume", "hold"):
        from autoscaler.ops import client

        return client.main(args, settings.api)
    return run(settings, agent=args.command == "agent")


if __name__ == "__main__":
    sys.exit(main())

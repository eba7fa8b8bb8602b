"""`autoscaler run`: thin on purpose; settings are built here once and passed down."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from autoscaler.app import App
from autoscaler.errors import AutoscalerError
from autoscaler.settings import Settings

logger = logging.getLogger(__name__)


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


async def _serve(settings: Settings) -> None:
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
    await App(settings).serve(stop)


def run(settings: Settings) -> int:
    _configure_logging(settings.log_level)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
            runner.run(_serve(settings))
    except AutoscalerError as exc:
        logger.error("%s", exc)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autoscaler", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the autoscaler (settings from AUTOSCALER_* and .env)")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"autoscaler: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        return run(settings)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

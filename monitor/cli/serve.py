"""The long-running commands: ``run`` (the daemon) and ``serve`` (the web page alone).
Apart from ``poll`` so that a one-off pass never imports the scheduler or the web stack."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from monitor.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from monitor.config import Config, check_listen, split_listen
from monitor.runtime import Runtime
from monitor.service.daemon import run_service
from monitor.service.web import WebServer, bind, create_app


def http_address(config: Config, given: str | None) -> str | None:
    """The address to serve the web page on, checked like [web] listen; None (with
    the message printed) when it will not do."""
    address = given or config.web.listen
    try:
        split_listen(address)
        check_listen(address, config.web.token)
    except ValueError as exc:
        where = "--http" if given else f"configuration error: {config.path}: [web]: listen"
        print(f"news-monitor: {'error: ' if given else ''}{where}: {exc}", file=sys.stderr)
        return None
    return address


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    address = None
    if args.http is not None:
        address = http_address(config, args.http)
        if address is None:
            return EXIT_USAGE
    if args.tick <= 0:
        print("news-monitor: error: --tick must be positive", file=sys.stderr)
        return EXIT_USAGE
    return run_service(config, http_address=address, tick=args.tick)


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    address = http_address(config, args.http)
    if address is None:
        return EXIT_USAGE
    return asyncio.run(serve(config, address))


async def serve(config: Config, address: str) -> int:
    try:
        sock = bind(address)
    except OSError as exc:
        print(f"news-monitor: cannot listen on {address}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_FAILED
    async with Runtime(config) as runtime:
        app = create_app(config, runtime.store)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = WebServer(app, sock)
        try:
            await server.start()
            print(f"serving http://{server.address}/", file=sys.stderr, flush=True)
            await stop.wait()
        finally:
            await server.stop()
    return EXIT_OK

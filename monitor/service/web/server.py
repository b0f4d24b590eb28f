"""Serving the app with uvicorn inside an event loop that someone else owns: the
daemon's (``run --http``) or ``serve``'s. The owner handles SIGTERM and SIGINT,
so uvicorn's own signal handling is off; the socket is bound here, so that a
port in use is an error the caller reports rather than uvicorn's exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn

from monitor.config import split_listen

log = logging.getLogger("monitor.web")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        yield


def bind(address: str) -> socket.socket:
    """A listening socket on HOST:PORT; OSError when it cannot be had."""
    host, port = split_listen(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


class WebServer:
    """The app on a bound socket, started and stopped from the owner's loop."""

    def __init__(self, app, sock: socket.socket):
        self.sock = sock
        self.server = _Server(uvicorn.Config(app, log_config=None, access_log=False,
                                             lifespan="off", timeout_graceful_shutdown=3,
                                             server_header=False))
        self.task: asyncio.Task | None = None

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.02)
        log.info("web page on http://%s/", self.address, extra={"event": "http"})

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, timeout=5)
        self.sock.close()

"""A real HTTP/1.1 server on 127.0.0.1 for tests, running in a background thread.

    with LoopbackServer() as srv:
        srv.route("/feed.xml", body=b"<rss/>", headers={"Content-Type": "application/rss+xml"})
        srv.route("/dyn", handler=lambda req: (200, {"X-Seen": req.path}, b"hi"))
        url = srv.url("/feed.xml")
        ...
        assert srv.requests_for("/feed.xml")[-1].headers["If-None-Match"] == '"v1"'

or, in a test module, the ``http_server`` fixture (``from tests.servers import http_server``).

A handler takes a ``Request`` and returns a ``Reply`` or a ``(status, headers, body)``
tuple; a body may be bytes or an iterable of bytes (sent chunked unless a
Content-Length header is given). Ready-made behaviours: ``conditional``, ``slow``,
``redirect``, ``redirect_chain``, ``encoded``, ``bomb``, ``huge``, ``status``,
``drop_mid_body``, ``hold``; ``LoopbackServer(tls=True)`` serves HTTPS with a
self-signed certificate. The server records every request and counts how
many were being handled at once (``max_in_flight``).
"""

from __future__ import annotations

import functools
import gzip
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import brotli
import pytest


@dataclass
class Request:
    method: str
    target: str             # path and query, as sent
    headers: Message        # case-insensitive: req.headers["if-none-match"]
    body: bytes
    received_at: float      # time.monotonic()

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    delay: float = 0.0              # pause before each chunk of the body
    drop_after: int | None = None   # close the connection after this many body bytes


Handler = Callable[[Request], "Reply | tuple[int, dict[str, str], bytes | Iterable[bytes]]"]


# --------------------------------------------------------------------------- bodies


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


def deflate_bytes(data: bytes, *, raw: bool = False) -> bytes:
    """deflate as servers send it: zlib-wrapped (RFC 9110) or, wrongly but often, raw."""
    obj = zlib.compressobj(wbits=-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    return obj.compress(data) + obj.flush()


def brotli_bytes(data: bytes) -> bytes:
    return brotli.compress(data)


def _zeros(size: int, block: int = 1 << 20) -> Iterator[bytes]:
    zero = bytes(block)
    while size > 0:
        yield zero[: min(block, size)]
        size -= block


@functools.lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed, produced without holding them in memory."""
    obj = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join(obj.compress(block) for block in _zeros(size)) + obj.flush()


@functools.lru_cache(maxsize=4)
def brotli_bomb(size: int) -> bytes:
    """``size`` zero bytes, brotli-compressed, produced without holding them in memory."""
    obj = brotli.Compressor(quality=5, lgwin=24)
    return b"".join(obj.process(block) for block in _zeros(size)) + obj.finish()


_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip_bytes,
    "deflate": deflate_bytes,
    "deflate-raw": functools.partial(deflate_bytes, raw=True),
    "br": brotli_bytes,
}
_BOMBS: dict[str, Callable[[int], bytes]] = {"gzip": gzip_bomb, "br": brotli_bomb}


@functools.lru_cache(maxsize=1)
def self_signed_cert() -> tuple[str, str]:
    """(certfile, keyfile) of a throwaway self-signed certificate for 127.0.0.1 and localhost.

    Made with the openssl command; tests that need it skip when it is missing.
    """
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tempfile.mkdtemp(prefix="monitor-test-cert-")
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- server


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-response is what many tests do on purpose.
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, self.headers, body, time.monotonic())
        owner._enter(request)
        try:
            reply = owner._dispatch(request)
            self._send(reply)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            owner._leave()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def _send(self, reply: Reply) -> None:
        stop = self.server.owner._stopping
        self.send_response(reply.status)
        headers = {k.lower(): (k, v) for k, v in reply.headers.items()}
        bodiless = self.command == "HEAD" or reply.status in (204, 304) or reply.status < 200
        body = reply.body
        chunked = False
        if not bodiless and "content-length" not in headers:
            if isinstance(body, (bytes, bytearray)):
                headers["content-length"] = ("Content-Length", str(len(body)))
            else:
                headers["transfer-encoding"] = ("Transfer-Encoding", "chunked")
                chunked = True
        for name, value in headers.values():
            self.send_header(name, value)
        self.end_headers()
        if bodiless:
            return
        chunks: Iterable[bytes] = [bytes(body)] if isinstance(body, (bytes, bytearray)) else body
        sent = 0
        for chunk in chunks:
            if reply.delay and stop.wait(reply.delay):
                self.close_connection = True
                return
            if reply.drop_after is not None and sent + len(chunk) >= reply.drop_after:
                self.wfile.write(chunk[: reply.drop_after - sent])
                self.wfile.flush()
                self.close_connection = True
                return
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                self.wfile.flush()
            sent += len(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


class LoopbackServer:
    """The test server. Routes match on the path (the query is ignored); others get 404."""

    __test__ = False  # not a test class, whatever module imports it

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls: bool = False) -> None:
        self._httpd = _HTTPServer((host, port), _RequestHandler)
        self._httpd.owner = self
        self.scheme = "https" if tls else "http"
        if tls:  # a self-signed certificate: clients that verify must refuse it
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self_signed_cert())
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0

    # ---- life cycle

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    # ---- bookkeeping (called from handler threads)

    def _enter(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _dispatch(self, request: Request) -> Reply:
        handler = self._routes.get(request.path)
        if handler is None:
            return Reply(404, {"Content-Type": "text/plain"}, b"not found")
        result = handler(request)
        return result if isinstance(result, Reply) else Reply(*result)

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # ---- routes

    def route(self, path: str, body: bytes | Iterable[bytes] = b"", *, status: int = 200,
              headers: dict[str, str] | None = None,
              handler: Handler | None = None) -> str:
        """Serve a fixed reply (or call ``handler``) at ``path``; returns the path's URL."""
        if handler is None:
            fixed = Reply(status, dict(headers or {}), body)
            handler = lambda request: fixed  # noqa: E731
        self._routes[path] = handler
        return self.url(path)

    def conditional(self, path: str, body: bytes, *, etag: str | None = '"v1"',
                    last_modified: str | None = "Wed, 21 Oct 2015 07:28:00 GMT",
                    content_type: str = "application/rss+xml; charset=utf-8") -> str:
        """200 with validators; 304 when the request carries a matching one."""
        validators = {k: v for k, v in (("ETag", etag), ("Last-Modified", last_modified)) if v}

        def handler(request: Request) -> Reply:
            inm = request.headers.get("If-None-Match")
            ims = request.headers.get("If-Modified-Since")
            if (etag and inm == etag) or (inm is None and last_modified and ims == last_modified):
                return Reply(304, dict(validators))
            return Reply(200, {"Content-Type": content_type, **validators}, body)

        return self.route(path, handler=handler)

    def slow(self, path: str, *, chunks: int = 60, delay: float = 0.5, chunk: bytes = b"x",
             content_length: bool = True) -> str:
        """Headers at once, then ``chunk`` every ``delay`` seconds: a trickling server."""
        headers = {"Content-Type": "text/plain"}
        if content_length:
            headers["Content-Length"] = str(chunks * len(chunk))
        return self.route(path, handler=lambda request: Reply(
            200, dict(headers), (chunk for _ in range(chunks)), delay=delay))

    def hold(self, path: str, seconds: float, body: bytes = b"ok") -> str:
        """Answer after ``seconds``: keeps requests in flight, for concurrency tests."""
        def handler(request: Request) -> Reply:
            self._stopping.wait(seconds)
            return Reply(200, {"Content-Type": "text/plain"}, body)
        return self.route(path, handler=handler)

    def redirect(self, path: str, to: str, *, status: int = 302) -> str:
        """A redirect to ``to`` (a path on this server, or an absolute URL)."""
        return self.route(path, status=status, headers={"Location": to, "Content-Length": "0"})

    def redirect_chain(self, prefix: str, hops: int, *, body: bytes = b"arrived") -> str:
        """``hops`` redirects ``prefix/0 -> prefix/1 -> ... -> prefix/end`` (200 with ``body``)."""
        for i in range(hops):
            nxt = f"{prefix}/{i + 1}" if i + 1 < hops else f"{prefix}/end"
            self.redirect(f"{prefix}/{i}", nxt)
        self.route(f"{prefix}/end", body=body, headers={"Content-Type": "text/plain"})
        return self.url(f"{prefix}/0" if hops else f"{prefix}/end")

    def encoded(self, path: str, body: bytes, encoding: str = "gzip", *,
                content_type: str = "text/plain; charset=utf-8") -> str:
        """``body`` compressed with gzip, deflate, deflate-raw (sent as "deflate") or br."""
        sent_as = "deflate" if encoding == "deflate-raw" else encoding
        return self.route(path, body=_ENCODERS[encoding](body), headers={
            "Content-Type": content_type, "Content-Encoding": sent_as})

    def bomb(self, path: str, size: int, encoding: str = "gzip") -> str:
        """``size`` zero bytes compressed with gzip or br: small on the wire, huge decoded."""
        return self.route(path, body=_BOMBS[encoding](size), headers={
            "Content-Type": "text/html", "Content-Encoding": encoding})

    def huge(self, path: str, size: int, *, content_length: bool = True) -> str:
        """``size`` bytes, streamed; with or without a Content-Length (else chunked)."""
        headers = {"Content-Type": "application/octet-stream"}
        if content_length:
            headers["Content-Length"] = str(size)
        return self.route(path, handler=lambda request: Reply(
            200, dict(headers), _zeros(size, 64 * 1024)))

    def status(self, path: str, code: int, *, retry_after: str | None = None,
               body: bytes = b"") -> str:
        """A fixed status, with Retry-After if given ("120" or an HTTP-date)."""
        headers = {"Content-Type": "text/plain"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return self.route(path, status=code, headers=headers, body=body)

    def drop_mid_body(self, path: str, *, declared: int = 10_000, sent: int = 100) -> str:
        """Promise ``declared`` bytes, send ``sent``, then close the connection."""
        return self.route(path, handler=lambda request: Reply(
            200, {"Content-Length": str(declared)}, [b"x" * declared], drop_after=sent))


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    """A started LoopbackServer on 127.0.0.1, stopped after the test."""
    with LoopbackServer() as server:
        yield server

"""Every outbound HTTP request of the monitor goes through this module.

One request passes through these layers, each with one concern:

    Fetcher.get / Fetcher.post   limits (global and per-host slots, per-host delay),
                                 total deadline, redirects, status handling,
                                 error messages (with the URL for GET, without for POST)
    _read_body + decoders        size caps on the raw and the decoded body; we
                                 decompress ourselves so that a bomb stops at max_body
    httpx.AsyncClient            one request/response, no redirects, no cookies, no env
    guarded transport            httpcore pool on netguard.GuardedNetworkBackend:
                                 resolve, refuse non-global addresses, connect to the IP

Errors from httpx, httpcore, ssl and socket are translated here into
monitor.errors (FetchError and its subclasses).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.cookiejar
import ssl
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import brotli
import httpcore
import httpx

from monitor import defaults
from monitor.errors import FetchError, FetchTimeout, HTTPStatusError, TooLarge, TooManyRedirects
from monitor.sources.netguard import (
    GuardedNetworkBackend,
    IPAddress,
    Resolver,
    is_public_address,
    resolve,
)
from monitor.text.dates import parse_http_date

__all__ = ["FetchPolicy", "Fetcher", "Response", "guarded_transport", "parse_retry_after"]

ACCEPT_ENCODING = "gzip, deflate, br"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_ENCODINGS = 3  # "gzip, br" is legal; a longer chain is a prank
_DECODE_STEP = 256 * 1024  # decoded bytes per decompressor call


@dataclass(frozen=True)
class FetchPolicy:
    user_agent: str = defaults.USER_AGENT
    timeout: float = defaults.TIMEOUT      # TOTAL deadline per request, incl. redirects and body
    max_body: int = defaults.MAX_BODY      # bytes, applied to the raw body AND to the decoded body
    max_redirects: int = defaults.MAX_REDIRECTS
    allow_private_networks: bool = defaults.ALLOW_PRIVATE_NETWORKS
    concurrency: int = defaults.CONCURRENCY          # requests in flight in all
    per_host: int = defaults.PER_HOST                # requests in flight per host
    per_host_delay: float = defaults.PER_HOST_DELAY  # least seconds between GET starts to one host
    verify_tls: bool = True          # never falls back to unverified


@dataclass
class Response:
    url: str                   # final URL after redirects
    status: int
    headers: httpx.Headers
    body: bytes                # decoded (decompressed) bytes, b"" for 304
    not_modified: bool         # True on 304
    etag: str | None
    last_modified: str | None
    content_type: str | None   # media type without parameters, lower-case
    charset: str | None        # from the Content-Type header, if any
    retry_after: float | None  # seconds, from Retry-After (seconds or HTTP-date), if any

    def header_max_age(self) -> float | None:
        """How long the server says this response stays fresh, in seconds, if it says.

        Cache-Control max-age wins over Expires (RFC 9111); an Expires that cannot
        be parsed means "already stale", i.e. 0.
        """
        for directive in self.headers.get("cache-control", "").split(","):
            name, _, value = directive.partition("=")
            if name.strip().lower() == "max-age":
                try:
                    return max(0.0, float(int(value.strip().strip('"'))))
                except ValueError:
                    return None
        expires = self.headers.get("expires")
        if expires is None:
            return None
        expires_at = parse_http_date(expires)
        if expires_at is None:
            return 0.0
        date = parse_http_date(self.headers.get("date", "")) or datetime.now(UTC)
        return max(0.0, (expires_at - date).total_seconds())


# --------------------------------------------------------------------------- headers


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait, from a Retry-After of either form ("120" or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        when = parse_http_date(value)
        if when is None:
            return None
        now = now or datetime.now(UTC)
        return max(0.0, (when - now).total_seconds())
    return seconds if seconds >= 0 and seconds == seconds else None  # NaN is not a delay


def _media_type(headers: httpx.Headers) -> tuple[str | None, str | None]:
    value = headers.get("content-type")
    if not value:
        return None, None
    media, *params = value.split(";")
    charset = None
    for param in params:
        name, _, arg = param.partition("=")
        if name.strip().lower() == "charset":
            charset = arg.strip().strip("\"'").lower() or None
    return (media.strip().lower() or None), charset


def _size(n: int) -> str:
    """A size as the user wrote it: max_body = "200KB" is 200,000 bytes (the
    configuration's KB and MB are decimal); binary sizes given in code read as such too."""
    for unit, scale in (("MB", 1024 * 1024), ("MB", 1000 * 1000), ("KB", 1024), ("KB", 1000)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def _display_url(url: httpx.URL) -> str:
    """The URL for messages: no userinfo, no query (it may hold a token), no fragment."""
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


# --------------------------------------------------------------------------- decoding


class _Decoder:
    """One Content-Encoding stage; never produces more than ``limit`` bytes in all."""

    name = "identity"

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._produced = 0

    def _room(self) -> int:
        # One byte more than allowed, so that passing the limit is detectable;
        # never 0, which zlib reads as "no limit".
        return self._limit - self._produced + 1

    def _step(self) -> int:
        return min(self._room(), _DECODE_STEP)

    def _count(self, out: bytes) -> bytes:
        self._produced += len(out)
        if self._produced > self._limit:
            raise TooLarge(f"decoded body larger than {_size(self._limit)}")
        return out

    def feed(self, data: bytes) -> bytes:
        return self._count(data)

    def flush(self) -> bytes:
        return b""


class _ZlibDecoder(_Decoder):
    """gzip (several members allowed) or deflate (zlib-wrapped or raw, as servers differ)."""

    def __init__(self, limit: int, name: str) -> None:
        super().__init__(limit)
        self.name = name
        self._pending = b""  # deflate: the first bytes, until the wrapper is known
        self._obj: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if name == "gzip" else None
        )
        self._done = False

    def feed(self, data: bytes) -> bytes:
        if self._obj is None:
            self._pending += data
            if len(self._pending) < 2:
                return b""
            cmf, flg = self._pending[0], self._pending[1]
            wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            data, self._pending = self._pending, b""
        out = []
        while data and not self._done:
            try:
                # Bounded steps, so a bomb never makes one big buffer; past the cap
                # the output is one byte over the limit and _count raises.
                out.append(self._count(self._obj.decompress(data, self._step())))
            except zlib.error as exc:
                raise FetchError(f"could not decode {self.name} body: {exc}") from exc
            data = self._obj.unconsumed_tail
            if self._obj.eof:
                rest = self._obj.unused_data
                if self.name == "gzip" and rest[:2] == b"\x1f\x8b":
                    self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    data = rest
                else:
                    self._done = True  # trailing garbage after the stream is ignored
        return b"".join(out)

    def flush(self) -> bytes:
        if self._obj is None:
            return b""  # fewer than two bytes: nothing to decode
        if self._done:
            return b""
        try:
            return self._count(self._obj.flush(self._step()))
        except zlib.error as exc:
            raise FetchError(f"could not decode {self.name} body: {exc}") from exc


class _BrotliDecoder(_Decoder):
    name = "br"

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._obj = brotli.Decompressor()

    def feed(self, data: bytes) -> bytes:
        out = []
        try:
            out.append(self._count(self._obj.process(data, output_buffer_limit=self._step())))
            while not self._obj.can_accept_more_data():
                out.append(self._count(self._obj.process(b"", output_buffer_limit=self._step())))
        except brotli.error as exc:
            raise FetchError(f"could not decode br body: {exc}") from exc
        return b"".join(out)


_DECODERS: dict[str, Callable[[int], _Decoder]] = {
    "gzip": lambda limit: _ZlibDecoder(limit, "gzip"),
    "x-gzip": lambda limit: _ZlibDecoder(limit, "gzip"),
    "deflate": lambda limit: _ZlibDecoder(limit, "deflate"),
    "br": _BrotliDecoder,
    "identity": _Decoder,
}


class _DecoderChain:
    """Undoes Content-Encoding stages in reverse order; each stage is capped at ``limit``."""

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        names = [n.strip().lower() for n in (content_encoding or "").split(",") if n.strip()]
        names = [n for n in names if n != "identity"]
        if len(names) > _MAX_ENCODINGS:
            raise FetchError(f"too many content encodings: {content_encoding}")
        for name in names:
            if name not in _DECODERS:
                raise FetchError(f"unsupported Content-Encoding {name!r}")
        self._stages = [_DECODERS[n](limit) for n in reversed(names)] or [_Decoder(limit)]

    def feed(self, data: bytes) -> bytes:
        for stage in self._stages:
            data = stage.feed(data)
        return data

    def flush(self) -> bytes:
        data = b""
        for stage in self._stages:
            data = stage.feed(data) + stage.flush() if data else stage.flush()
        return data


async def _read_body(response: httpx.Response, limit: int) -> bytes:
    length = response.headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > limit:
        raise TooLarge(f"body larger than {_size(limit)} (Content-Length: {length})")
    decoder = _DecoderChain(response.headers.get("content-encoding"), limit)
    parts: list[bytes] = []
    raw = 0
    # aiter_raw: the bytes as sent; httpx would otherwise decompress without a cap.
    async for chunk in response.aiter_raw():
        raw += len(chunk)
        if raw > limit:
            raise TooLarge(f"body larger than {_size(limit)}")
        parts.append(decoder.feed(chunk))
    parts.append(decoder.flush())
    return b"".join(parts)


# --------------------------------------------------------------------------- transport


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its httpcore pool rebuilt on the guarded backend.

    httpx has no public hook for the network backend; the pool attribute is the
    documented-in-source seam (and keeps httpx's exception mapping and streams).
    """

    def __init__(self, policy: FetchPolicy, backend: httpcore.AsyncNetworkBackend) -> None:
        ssl_context = httpx.create_ssl_context(verify=policy.verify_tls, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=None,  # the Fetcher's semaphores bound what is in flight
            max_keepalive_connections=max(1, policy.concurrency),
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=backend,
        )


def guarded_transport(
    policy: FetchPolicy,
    *,
    permit: Callable[[IPAddress], bool] | None = None,
    resolver: Resolver = resolve,
) -> httpx.AsyncBaseTransport:
    """The transport the Fetcher uses by default.

    ``permit`` overrides the address policy (tests use it to treat one loopback
    address as "the public internet"); by default it follows
    ``policy.allow_private_networks``.
    """
    if permit is None and not policy.allow_private_networks:
        permit = is_public_address
    return _GuardedTransport(policy, GuardedNetworkBackend(permit=permit, resolver=resolver))


# --------------------------------------------------------------------------- errors


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _translate(exc: Exception, policy: FetchPolicy) -> FetchError:
    """A FetchError with a plain reason (no URL) for a library error."""
    chain = _causes(exc)

    def find(kind: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kind)), None)

    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeout(f"timed out after {policy.timeout:g}s")
    if (cert := find(ssl.SSLCertVerificationError)) is not None:
        detail = getattr(cert, "verify_message", None) or str(cert)
        return FetchError(f"TLS certificate verify failed: {detail}")
    if (tls := find(ssl.SSLError)) is not None:
        return FetchError(f"TLS handshake failed: {getattr(tls, 'reason', None) or tls}")
    if isinstance(exc, httpx.ConnectError):
        if find(ConnectionRefusedError) or _errno(chain) == errno.ECONNREFUSED:
            return FetchError("connection refused")
        if find(TimeoutError):
            return FetchTimeout(f"timed out after {policy.timeout:g}s")
        oserr = find(OSError)
        detail = getattr(oserr, "strerror", None) or str(oserr or exc) or type(exc).__name__
        return FetchError(f"could not connect: {detail}")
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc)
        if "peer closed" in text or "incomplete" in text or "without sending" in text:
            return FetchError("connection closed before the response was complete")
        return FetchError(f"malformed HTTP response: {text}")
    if isinstance(exc, httpx.ReadError):
        return FetchError("connection dropped while reading the response")
    if isinstance(exc, httpx.WriteError):
        return FetchError("connection dropped while sending the request")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FetchError("unsupported URL scheme")
    if isinstance(exc, (httpx.InvalidURL, httpx.LocalProtocolError)):
        return FetchError(f"invalid request: {exc}")
    return FetchError(f"request failed: {type(exc).__name__}: {exc}")


def _errno(chain: list[BaseException]) -> int | None:
    return next((e.errno for e in chain if isinstance(e, OSError) and e.errno), None)


def _with_message(exc: FetchError, message: str, url: str | None) -> FetchError:
    """The same kind of error, with the caller-facing message."""
    if isinstance(exc, HTTPStatusError):
        return HTTPStatusError(message, url=url, status=exc.status, retry_after=exc.retry_after)
    return type(exc)(message, url=url)


def _where(current: httpx.URL | None, url: str) -> str | None:
    """The URL to name in a GET error: the hop that failed, else the one asked for."""
    if current is not None:
        return _display_url(current)
    try:
        return _display_url(httpx.URL(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return None


def _located(exc: FetchError, where: str | None) -> str:
    return f"{exc} ({where})" if where else str(exc)


def _parse_target(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(f"invalid URL: {exc}") from exc
    if target.scheme not in ("http", "https"):
        raise FetchError(f"unsupported URL scheme {target.scheme or '(none)'!r}")
    if not target.host:
        raise FetchError("invalid URL: no host")
    return target


# --------------------------------------------------------------------------- fetcher


class _HostGate:
    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.next_start = 0.0  # loop time before which no request may start
        self.users = 0


class Fetcher:
    """The one HTTP client of the monitor. Use one per event loop, as an async context manager."""

    def __init__(self, policy: FetchPolicy, *, transport: httpx.AsyncBaseTransport | None = None):
        self.policy = policy
        # A transport given here replaces the whole network layer, address policy included.
        self._client = httpx.AsyncClient(
            transport=transport if transport is not None else guarded_transport(policy),
            headers={"User-Agent": policy.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(policy.timeout),
            follow_redirects=False,
            trust_env=False,  # no proxies or .netrc from the environment
            # No cookie jar: it would grow for ever in a daemon and mix sites' state.
            cookies=http.cookiejar.CookieJar(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        )
        self._slots = asyncio.Semaphore(max(1, policy.concurrency))
        self._hosts: dict[str, _HostGate] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- public API

    async def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                  accept: str | None = None) -> Response:
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        current: httpx.URL | None = None
        try:
            current = _parse_target(url)
            visited = {str(current)}
            async with self._deadline() as start_clock:
                for _ in range(self.policy.max_redirects + 1):
                    async with self._host_turn(current.host, start_clock):
                        response = await self._client.send(
                            self._client.build_request("GET", current, headers=headers),
                            stream=True,
                        )
                        try:
                            location = self._redirect_target(response, current)
                            if location is None:
                                return await self._finish(response, current)
                        finally:
                            await response.aclose()
                    if str(location) in visited:
                        raise TooManyRedirects(f"redirect loop back to {_display_url(location)}")
                    visited.add(str(location))
                    current = location
                raise TooManyRedirects(f"more than {self.policy.max_redirects} redirects")
        except FetchError as exc:
            where = _where(current, url)
            raise _with_message(exc, _located(exc, where), where) from (exc.__cause__ or exc)
        except httpx.HTTPError as exc:
            where = _where(current, url)
            err = _translate(exc, self.policy)
            raise _with_message(err, _located(err, where), where) from exc

    async def post(self, url: str, *, content: bytes,
                   headers: dict[str, str] | None = None) -> Response:
        """POST for webhooks. The URL is a secret: no message or error ever shows it."""
        try:
            target = _parse_target(url)
            async with self._deadline() as start_clock:
                # A delivery is not a crawl: the politeness delay is for GETs.
                async with self._host_turn(target.host, start_clock, polite=False):
                    response = await self._client.send(
                        self._client.build_request("POST", target, content=content,
                                                   headers=headers or {}),
                        stream=True,
                    )
                    try:
                        if 300 <= response.status_code < 400:
                            raise HTTPStatusError(
                                f"unexpected redirect (HTTP {response.status_code})",
                                status=response.status_code,
                                retry_after=parse_retry_after(response.headers.get("retry-after")),
                            )
                        return await self._finish(response, target)
                    finally:
                        await response.aclose()
        except FetchError as exc:
            # from None: the chained errors may carry the request, and with it the URL.
            raise _with_message(exc, f"webhook request failed: {exc}", None) from None
        except httpx.HTTPError as exc:
            err = _translate(exc, self.policy)
            raise _with_message(err, f"webhook request failed: {err}", None) from None

    # ---- steps

    @contextlib.asynccontextmanager
    async def _deadline(self) -> AsyncIterator[Callable[[], None]]:
        """The total deadline; its clock starts when the first hop holds its slots.

        Waiting in the queue for a free slot is not the server's fault, so it is not counted.
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as scope:
                def start() -> None:
                    if scope.when() is None:
                        scope.reschedule(loop.time() + self.policy.timeout)
                yield start
        except TimeoutError as exc:
            if scope.expired():
                raise FetchTimeout(f"timed out after {self.policy.timeout:g}s") from exc
            raise

    @contextlib.asynccontextmanager
    async def _host_turn(self, host: str, start_clock: Callable[[], None], *,
                         polite: bool = True) -> AsyncIterator[None]:
        """Hold one of the host's slots (respecting per_host_delay), then a global one.

        Host first: a request queued behind a busy host must not sit on a global
        slot that a request to another host could use. Both are taken per hop, in
        that order, so a redirect cannot deadlock against another request.
        """
        key = host.lower()
        gate = self._hosts.get(key)
        if gate is None:
            self._prune_hosts()
            gate = self._hosts[key] = _HostGate(max(1, self.policy.per_host))
        gate.users += 1
        try:
            async with gate.slots:
                if polite:
                    loop = asyncio.get_running_loop()
                    now = loop.time()
                    begin = max(now, gate.next_start)
                    gate.next_start = begin + self.policy.per_host_delay
                    if begin > now:
                        await asyncio.sleep(begin - now)
                async with self._slots:
                    start_clock()
                    yield
        finally:
            gate.users -= 1

    def _prune_hosts(self) -> None:
        if len(self._hosts) < 256:
            return
        now = asyncio.get_running_loop().time()
        for key in [k for k, g in self._hosts.items() if g.users == 0 and g.next_start <= now]:
            del self._hosts[key]

    def _redirect_target(self, response: httpx.Response, current: httpx.URL) -> httpx.URL | None:
        """Where a GET redirect points (checked like any URL), or None for a final response."""
        status = response.status_code
        if not 300 <= status < 400 or status == 304:
            return None
        location = response.headers.get("location")
        if status not in _REDIRECT_STATUSES or not location:
            raise FetchError(f"HTTP {status} without a usable Location")
        try:
            target = current.join(location.strip())
        except (httpx.InvalidURL, ValueError) as exc:
            raise FetchError(f"redirect to an invalid URL: {exc}") from exc
        if target.scheme not in ("http", "https"):
            raise FetchError(f"redirect to unsupported URL scheme {target.scheme!r}")
        return target.copy_with(fragment=None)

    async def _finish(self, response: httpx.Response, url: httpx.URL) -> Response:
        headers = response.headers
        retry_after = parse_retry_after(headers.get("retry-after"))
        status = response.status_code
        if status >= 400:
            reason = response.reason_phrase or ""
            raise HTTPStatusError(f"HTTP {status} {reason}".rstrip(), status=status,
                                  retry_after=retry_after)
        not_modified = status == 304
        body = b"" if not_modified else await _read_body(response, self.policy.max_body)
        content_type, charset = _media_type(headers)
        return Response(
            url=str(url),
            status=status,
            headers=headers,
            body=body,
            not_modified=not_modified,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            content_type=content_type,
            charset=charset,
            retry_after=retry_after,
        )

"""monitor.sources.fetch against a real HTTP server on loopback (tests/servers.py)."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TypeVar

import httpx
import pytest

from monitor.errors import (
    BlockedAddress,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    TooLarge,
    TooManyRedirects,
)
from monitor.sources.fetch import (
    Fetcher,
    FetchPolicy,
    Response,
    guarded_transport,
    parse_retry_after,
)
from monitor.sources.netguard import is_public_address, non_global_reason, parse_ip
from tests.servers import LoopbackServer, Request, closed_port, deflate_bytes, gzip_bytes

T = TypeVar("T")

# Everything in these tests lives on 127.0.0.1, so most of them switch the guard off;
# and one host serves every request, so the politeness delay would only slow them.
LOOPBACK = FetchPolicy(allow_private_networks=True, timeout=5.0, per_host_delay=0)


def fetch(call: Callable[[Fetcher], Awaitable[T]], policy: FetchPolicy = LOOPBACK,
          transport: httpx.AsyncBaseTransport | None = None) -> T:
    async def main() -> T:
        async with Fetcher(policy, transport=transport) as fetcher:
            return await call(fetcher)
    return asyncio.run(main())


def get(url: str, policy: FetchPolicy = LOOPBACK, **kwargs: str) -> Response:
    return fetch(lambda f: f.get(url, **kwargs), policy)


# --------------------------------------------------------------------------- plain GET


def test_get_returns_body_headers_and_validators(http_server: LoopbackServer) -> None:
    url = http_server.route("/feed.xml", body=b"<rss/>", headers={
        "Content-Type": 'Application/RSS+XML; charset="ISO-8859-1"',
        "ETag": '"abc"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT",
        "Cache-Control": "public, max-age=600"})

    response = get(url, accept="application/rss+xml")

    assert (response.status, response.body, response.url) == (200, b"<rss/>", url)
    assert not response.not_modified
    assert response.etag == '"abc"'
    assert response.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert (response.content_type, response.charset) == ("application/rss+xml", "iso-8859-1")
    assert response.headers["cache-control"] == "public, max-age=600"
    assert response.header_max_age() == 600
    sent = http_server.requests_for("/feed.xml")[0].headers
    assert sent["User-Agent"] == LOOPBACK.user_agent
    assert sent["Accept-Encoding"] == "gzip, deflate, br"
    assert sent["Accept"] == "application/rss+xml"
    assert sent["If-None-Match"] is None


def test_conditional_get_sends_validators_and_returns_not_modified(
        http_server: LoopbackServer) -> None:
    url = http_server.conditional("/feed.xml", b"<rss>v1</rss>")
    first = get(url)
    assert first.body == b"<rss>v1</rss>" and not first.not_modified

    again = get(url, etag=first.etag, last_modified=first.last_modified)

    assert again.not_modified and again.status == 304 and again.body == b""
    assert again.etag == first.etag
    sent = http_server.requests_for("/feed.xml")[1].headers
    assert sent["If-None-Match"] == first.etag
    assert sent["If-Modified-Since"] == first.last_modified


def test_conditional_get_with_last_modified_only(http_server: LoopbackServer) -> None:
    url = http_server.conditional("/page", b"x", etag=None)
    first = get(url)
    assert first.etag is None
    assert get(url, last_modified=first.last_modified).not_modified


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "br"])
def test_compressed_bodies_are_decoded(http_server: LoopbackServer, encoding: str) -> None:
    text = "北朝鮮 Kishida Kim summit ".encode() * 2000
    url = http_server.encoded("/c", text, encoding)
    assert get(url).body == text


def test_unknown_content_encoding_is_an_error(http_server: LoopbackServer) -> None:
    url = http_server.route("/z", body=b"??", headers={"Content-Encoding": "zstd"})
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'zstd'"):
        get(url)


# --------------------------------------------------------------------------- redirects


def test_redirects_are_followed_to_the_final_url(http_server: LoopbackServer) -> None:
    start = http_server.redirect_chain("/hop", 5, body=b"the article")
    response = get(start)
    assert response.body == b"the article"
    assert response.url == http_server.url("/hop/end")


def test_redirect_with_absolute_location_and_301(http_server: LoopbackServer) -> None:
    http_server.route("/new", body=b"moved here")
    url = http_server.redirect("/old", http_server.url("/new"), status=301)
    assert get(url).url == http_server.url("/new")


def test_sixth_redirect_is_refused(http_server: LoopbackServer) -> None:
    start = http_server.redirect_chain("/hop", 6)
    with pytest.raises(TooManyRedirects, match="more than 5 redirects"):
        get(start)
    assert http_server.requests_for("/hop/end") == []


def test_redirect_loop_is_refused(http_server: LoopbackServer) -> None:
    http_server.redirect("/a", "/b")
    http_server.redirect("/b", "/a")
    with pytest.raises(TooManyRedirects, match="loop"):
        get(http_server.url("/a"))


def test_redirect_to_another_scheme_is_refused(http_server: LoopbackServer) -> None:
    url = http_server.redirect("/r", "file:///etc/passwd")
    with pytest.raises(FetchError, match="unsupported URL scheme 'file'"):
        get(url)


# --------------------------------------------------------------------------- deadline and size


def test_trickling_server_hits_the_total_deadline(http_server: LoopbackServer) -> None:
    url = http_server.slow("/slow", chunks=60, delay=0.25)
    with pytest.raises(FetchTimeout, match=r"timed out after 1s"):
        get(url, FetchPolicy(allow_private_networks=True, timeout=1.0))


def test_deadline_covers_all_redirect_hops(http_server: LoopbackServer) -> None:
    # Each hop is quick enough for a per-phase timeout; together they are not.
    def slow_hop(next_path: str) -> Callable[[Request], tuple[int, dict[str, str], bytes]]:
        def handler(request: Request) -> tuple[int, dict[str, str], bytes]:
            time.sleep(0.4)
            return 302, {"Location": next_path}, b""
        return handler

    for i in range(4):
        http_server.route(f"/h{i}", handler=slow_hop(f"/h{i + 1}"))
    http_server.route("/h4", body=b"late")
    with pytest.raises(FetchTimeout):
        get(http_server.url("/h0"), FetchPolicy(allow_private_networks=True, timeout=1.0))


@pytest.mark.parametrize("content_length", [True, False], ids=["with-length", "chunked"])
def test_body_over_max_body_is_refused(http_server: LoopbackServer, content_length: bool) -> None:
    url = http_server.huge("/big", 5 * 1024 * 1024, content_length=content_length)
    policy = FetchPolicy(allow_private_networks=True, max_body=1024 * 1024)
    with pytest.raises(TooLarge, match="larger than 1 MB"):
        get(url, policy)


def test_body_of_exactly_max_body_is_accepted(http_server: LoopbackServer) -> None:
    url = http_server.huge("/exact", 64 * 1024, content_length=False)
    policy = FetchPolicy(allow_private_networks=True, max_body=64 * 1024)
    assert len(get(url, policy).body) == 64 * 1024


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compression_bomb_is_refused_without_inflating_it(http_server: LoopbackServer,
                                                           encoding: str) -> None:
    url = http_server.bomb("/bomb", 256 * 1024 * 1024, encoding)  # ~1 MB (gzip) on the wire
    policy = FetchPolicy(allow_private_networks=True)  # max_body 10 MB
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="decoded body larger than 10 MB"):
            get(url, policy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * policy.max_body  # what was kept, not the 256 MB it expands to


def test_decoded_size_cap_applies_to_small_compressed_bodies(http_server: LoopbackServer) -> None:
    url = http_server.encoded("/z", b"a" * 100_000, "gzip")  # ~100 bytes on the wire
    with pytest.raises(TooLarge):
        get(url, FetchPolicy(allow_private_networks=True, max_body=50_000))


def test_connection_dropped_mid_body(http_server: LoopbackServer) -> None:
    url = http_server.drop_mid_body("/cut")
    with pytest.raises(FetchError, match="connection closed before the response was complete"):
        get(url)


# --------------------------------------------------------------------------- status codes


@pytest.mark.parametrize("code", [404, 500, 403])
def test_error_status_raises_with_status(http_server: LoopbackServer, code: int) -> None:
    url = http_server.status("/s", code, body=b"nope")
    with pytest.raises(HTTPStatusError) as info:
        get(url)
    assert info.value.status == code and info.value.retry_after is None
    assert f"HTTP {code}" in str(info.value)


def test_429_with_retry_after_seconds(http_server: LoopbackServer) -> None:
    url = http_server.status("/limited", 429, retry_after="120")
    with pytest.raises(HTTPStatusError) as info:
        get(url)
    assert (info.value.status, info.value.retry_after) == (429, 120.0)


def test_503_with_retry_after_http_date(http_server: LoopbackServer) -> None:
    later = datetime.now(UTC) + timedelta(seconds=90)
    url = http_server.status("/down", 503, retry_after=format_datetime(later, usegmt=True))
    with pytest.raises(HTTPStatusError) as info:
        get(url)
    assert info.value.status == 503
    assert info.value.retry_after is not None and 80 <= info.value.retry_after <= 91


# --------------------------------------------------------------------------- network failures


def test_connection_refused() -> None:
    with pytest.raises(FetchError, match="connection refused") as info:
        get(f"http://127.0.0.1:{closed_port()}/feed")
    assert type(info.value) is FetchError


def test_dns_failure() -> None:
    with pytest.raises(FetchError, match="DNS lookup failed for host no-such-host.invalid"):
        get("http://no-such-host.invalid/rss")


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "file:///etc/passwd",
                                 "javascript:alert(1)", "gopher://example.org/"])
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="unsupported URL scheme"):
        get(url)


def test_userinfo_and_query_never_appear_in_errors(http_server: LoopbackServer) -> None:
    http_server.status("/private", 404)
    url = f"http://reader:hunter2@127.0.0.1:{http_server.port}/private?token=s3cret"
    with pytest.raises(HTTPStatusError) as info:
        get(url)
    message = str(info.value)
    assert "/private" in message
    assert "hunter2" not in message and "s3cret" not in message and "reader" not in message
    assert "hunter2" not in (info.value.url or "")


# --------------------------------------------------------------------------- private networks


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "10.0.0.1",
    "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "0", "127.1", "2130706433",
    "0x7f000001", "[fd00::1]", "[fe80::1]",
])
def test_default_policy_refuses_non_global_targets(http_server: LoopbackServer, host: str) -> None:
    with pytest.raises(BlockedAddress, match="blocked"):
        get(f"http://{host}:{http_server.port}/feed", FetchPolicy(timeout=5.0))
    assert http_server.requests == []


def test_default_policy_refuses_post_to_loopback(http_server: LoopbackServer) -> None:
    with pytest.raises(BlockedAddress):
        fetch(lambda f: f.post(http_server.url("/hook"), content=b"{}"), FetchPolicy())
    assert http_server.requests == []


def _pretend_public(server: LoopbackServer, names: dict[str, list[str]] | None = None
                    ) -> httpx.AsyncBaseTransport:
    """The guarded transport, with 127.0.0.1 standing in for the public internet."""
    names = names or {}

    async def resolver(host: str, port: int) -> list[str]:
        if host in names:
            return names[host]
        raise FetchError(f"DNS lookup failed for host {host}")

    return guarded_transport(FetchPolicy(), resolver=resolver,
                             permit=lambda ip: ip == ipaddress.ip_address("127.0.0.1"))


@pytest.mark.parametrize("target", [
    "http://127.0.0.2:{port}/x", "http://[::1]:{port}/x", "http://10.0.0.1/x",
    "http://internal.test:{port}/x",
])
def test_redirect_to_a_private_address_is_refused(http_server: LoopbackServer,
                                                  target: str) -> None:
    url = http_server.redirect("/r", target.format(port=http_server.port))
    transport = _pretend_public(http_server, {"internal.test": ["192.168.0.10"]})
    with pytest.raises(BlockedAddress):
        fetch(lambda f: f.get(url), FetchPolicy(timeout=5.0), transport)
    assert [r.path for r in http_server.requests] == ["/r"]


def test_guard_connects_to_the_vetted_address_and_keeps_the_host_name(
        http_server: LoopbackServer) -> None:
    http_server.route("/feed", body=b"ok")
    transport = _pretend_public(http_server, {"news.test": ["127.0.0.1"]})
    response = fetch(lambda f: f.get(f"http://news.test:{http_server.port}/feed"),
                     FetchPolicy(timeout=5.0), transport)
    assert response.body == b"ok"
    assert http_server.requests[0].headers["Host"] == f"news.test:{http_server.port}"


def test_name_with_any_private_answer_is_refused(http_server: LoopbackServer) -> None:
    # Mixed answers are how DNS rebinding is set up: refuse the name outright.
    transport = _pretend_public(http_server, {"mixed.test": ["127.0.0.1", "10.0.0.1"]})
    with pytest.raises(BlockedAddress, match="mixed.test resolves to private address 10.0.0.1"):
        fetch(lambda f: f.get(f"http://mixed.test:{http_server.port}/"), FetchPolicy(), transport)
    assert http_server.requests == []


@pytest.mark.parametrize("address, reason", [
    ("8.8.8.8", None), ("1.1.1.1", None), ("172.32.0.1", None), ("2606:4700::1111", None),
    ("::ffff:8.8.8.8", None),
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"),
    ("192.168.0.1", "private"), ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.255", "carrier-grade NAT"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"), ("fec0::1", "site-local"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
    ("2002:7f00:1::", "loopback"), ("64:ff9b::a9fe:a9fe", "link-local"),
    ("192.0.2.1", "private"), ("2001:db8::1", "private"), ("0.1.2.3", "private"),
])
def test_address_classifier(address: str, reason: str | None) -> None:
    ip = parse_ip(address)
    assert ip is not None
    got = non_global_reason(ip)
    assert (got is None) == (reason is None), got
    if reason is not None:
        assert got is not None and got.startswith(reason)
    assert is_public_address(ip) == (reason is None)


# --------------------------------------------------------------------------- concurrency


def _get_many(urls: list[str], policy: FetchPolicy) -> list[Response]:
    async def call(fetcher: Fetcher) -> list[Response]:
        return await asyncio.gather(*(fetcher.get(u) for u in urls))
    return fetch(call, policy)


def test_requests_per_host_never_exceed_per_host(http_server: LoopbackServer) -> None:
    url = http_server.hold("/hold", 0.3)
    policy = FetchPolicy(allow_private_networks=True, per_host=2, concurrency=16,
                         per_host_delay=0)
    assert len(_get_many([url] * 6, policy)) == 6
    assert http_server.max_in_flight == 2


def test_global_concurrency_limit(http_server: LoopbackServer) -> None:
    url = http_server.hold("/hold", 0.2)
    policy = FetchPolicy(allow_private_networks=True, per_host=10, concurrency=3,
                         per_host_delay=0)
    _get_many([url] * 7, policy)
    assert http_server.max_in_flight == 3


def test_per_host_delay_spaces_request_starts(http_server: LoopbackServer) -> None:
    url = http_server.route("/p", body=b"ok")
    policy = FetchPolicy(allow_private_networks=True, per_host=4, per_host_delay=0.2)
    _get_many([url] * 3, policy)
    times = [r.received_at for r in http_server.requests]
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(times)), times


# --------------------------------------------------------------------------- POST


def test_post_returns_the_response(http_server: LoopbackServer) -> None:
    url = http_server.route("/hook", body=b"ok", headers={"Content-Type": "text/plain"})
    response = fetch(lambda f: f.post(url, content=b'{"text": "hi"}',
                                      headers={"Content-Type": "application/json"}))
    assert (response.status, response.body) == (200, b"ok")
    sent = http_server.requests_for("/hook")[0]
    assert sent.method == "POST" and sent.body == b'{"text": "hi"}'
    assert sent.headers["Content-Type"] == "application/json"


SECRET_HOOK = "/services/T000/B000/XXXXsecret"


def test_post_redirect_is_an_error_and_not_followed(http_server: LoopbackServer) -> None:
    http_server.route("/elsewhere", body=b"should not be reached")
    http_server.redirect(SECRET_HOOK, "/elsewhere", status=307)
    url = http_server.url(SECRET_HOOK) + "?token=abc123"
    with pytest.raises(HTTPStatusError) as info:
        fetch(lambda f: f.post(url, content=b"{}"))
    assert info.value.status == 307
    assert str(info.value).startswith("webhook request failed:")
    assert http_server.requests_for("/elsewhere") == []


@pytest.mark.parametrize("case", ["status", "refused", "timeout"])
def test_post_errors_never_show_the_url(http_server: LoopbackServer, case: str) -> None:
    policy = LOOPBACK
    if case == "status":
        http_server.status(SECRET_HOOK, 500)
        url = http_server.url(SECRET_HOOK) + "?token=abc123"
    elif case == "refused":
        url = f"http://127.0.0.1:{closed_port()}{SECRET_HOOK}?token=abc123"
    else:
        http_server.slow(SECRET_HOOK, delay=0.2)
        url = http_server.url(SECRET_HOOK) + "?token=abc123"
        policy = FetchPolicy(allow_private_networks=True, timeout=0.5)
    with pytest.raises(FetchError) as info:
        fetch(lambda f: f.post(url, content=b"{}"), policy)
    message = str(info.value)
    assert message.startswith("webhook request failed: ")
    for secret in ("XXXXsecret", "abc123", "services", "http://"):
        assert secret not in message
    assert info.value.url is None


# --------------------------------------------------------------------------- pure helpers


def test_parse_retry_after() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Wed, 01 May 2024 12:02:00 GMT", now=now) == 120.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-5") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("headers, expected", [
    ({"Cache-Control": "max-age=300"}, 300.0),
    ({"Cache-Control": "no-cache, max-age=60", "Expires": "Thu, 01 Jan 2099 00:00:00 GMT"}, 60.0),
    ({"Date": "Wed, 01 May 2024 12:00:00 GMT", "Expires": "Wed, 01 May 2024 12:10:00 GMT"}, 600.0),
    ({"Expires": "0"}, 0.0),
    ({}, None),
])
def test_header_max_age(headers: dict[str, str], expected: float | None) -> None:
    response = Response(url="http://x/", status=200, headers=httpx.Headers(headers), body=b"",
                        not_modified=False, etag=None, last_modified=None, content_type=None,
                        charset=None, retry_after=None)
    assert response.header_max_age() == expected


def test_chained_and_multi_member_encodings(http_server: LoopbackServer) -> None:
    text = b"<p>Kim Jong Un</p>" * 500
    chained = gzip_bytes(deflate_bytes(text))  # "deflate, gzip": deflate applied first
    http_server.route("/chain", body=chained, headers={"Content-Encoding": "deflate, gzip"})
    http_server.route("/members", body=gzip_bytes(text) + gzip_bytes(text),
                      headers={"Content-Encoding": "gzip"})
    assert get(http_server.url("/chain")).body == text
    assert get(http_server.url("/members")).body == text + text


def test_corrupt_compressed_body_is_an_error(http_server: LoopbackServer) -> None:
    url = http_server.route("/bad", body=b"\x1f\x8b not really gzip",
                            headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="could not decode gzip body"):
        get(url)


def test_tls_certificate_is_verified() -> None:
    with LoopbackServer(tls=True) as server:
        url = server.route("/feed", body=b"secure")
        with pytest.raises(FetchError, match="TLS certificate verify failed"):
            get(url)
        unverified = FetchPolicy(allow_private_networks=True, verify_tls=False)
        assert get(url, unverified).body == b"secure"

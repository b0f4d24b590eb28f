"""robots.txt against a real loopback server, through the real Fetcher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from monitor.sources.fetch import Fetcher, FetchPolicy
from monitor.sources.robots import MAX_ROBOTS_BYTES, RobotsCache, product_token
from tests.servers import LoopbackServer, Reply, Request, closed_port

T = TypeVar("T")
AGENT = "news-monitor/0.1 (+https://github.com/news-monitor)"
LOOPBACK = FetchPolicy(user_agent=AGENT, allow_private_networks=True, timeout=5.0,
                       per_host_delay=0)

ROBOTS = b"""\
# comments and blank lines are fine

User-agent: *
Disallow: /private/
Crawl-delay: 7

User-agent: News-Monitor
Disallow: /no-monitors/
Allow: /
Crawl-delay: 3

User-agent: otherbot
Disallow: /
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def run(call: Callable[[RobotsCache], Awaitable[T]], *, clock: Clock | None = None,
        policy: FetchPolicy = LOOPBACK, **kwargs: float) -> T:
    async def main() -> T:
        async with Fetcher(policy) as fetcher:
            cache = RobotsCache(fetcher, AGENT, now=clock or Clock(), **kwargs)
            return await call(cache)
    return asyncio.run(main())


def robots(server: LoopbackServer, body: bytes = ROBOTS, **kwargs) -> None:
    server.route("/robots.txt", body, headers={"Content-Type": "text/plain"}, **kwargs)


@pytest.mark.parametrize("path, allowed", [
    ("/news/1", True),
    ("/private/1", True),        # our group replaces '*'
    ("/no-monitors/1", False),
    ("/no-monitors", True),
    ("/", True),
])
def test_our_group_decides(http_server: LoopbackServer, path: str, allowed: bool) -> None:
    robots(http_server)
    assert run(lambda c: c.allowed(http_server.url(path))) is allowed


@pytest.mark.parametrize("path, allowed", [("/news/1", True), ("/private/x", False)])
def test_star_group_applies_when_we_are_not_named(http_server: LoopbackServer, path: str,
                                                   allowed: bool) -> None:
    robots(http_server,
           b"User-agent: otherbot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\n")
    assert run(lambda c: c.allowed(http_server.url(path))) is allowed


def test_product_token() -> None:
    assert product_token(AGENT) == "news-monitor"
    assert product_token("  Example_Bot/2.0") == "example_bot"
    assert product_token("news-monitor") == "news-monitor"


@pytest.mark.parametrize("status, allowed", [
    (404, True), (410, True), (401, True), (403, True),   # unavailable: all allowed
    (500, False), (503, False), (429, False),             # unreachable: all disallowed
])
def test_status_of_robots_txt(http_server: LoopbackServer, status: int, allowed: bool) -> None:
    http_server.status("/robots.txt", status)
    assert run(lambda c: c.allowed(http_server.url("/article"))) is allowed


def test_missing_robots_txt_means_allowed(http_server: LoopbackServer) -> None:
    assert run(lambda c: c.allowed(http_server.url("/article"))) is True  # the server's own 404
    assert len(http_server.requests_for("/robots.txt")) == 1


def test_network_error_means_disallowed() -> None:
    assert run(lambda c: c.allowed(f"http://127.0.0.1:{closed_port()}/article")) is False


def test_one_fetch_serves_many_calls(http_server: LoopbackServer) -> None:
    robots(http_server)

    async def many(cache: RobotsCache) -> list[bool]:
        first = await asyncio.gather(*(cache.allowed(http_server.url(f"/a/{i}"))
                                       for i in range(20)))
        later = [await cache.allowed(http_server.url(f"/no-monitors/{i}")) for i in range(5)]
        return [*first, *later]

    assert run(many) == [True] * 20 + [False] * 5
    assert len(http_server.requests_for("/robots.txt")) == 1


def test_concurrent_callers_share_one_slow_fetch(http_server: LoopbackServer) -> None:
    def slow(request: Request) -> Reply:
        http_server._stopping.wait(0.3)
        return Reply(200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /x\n")

    http_server.route("/robots.txt", handler=slow)

    async def many(cache: RobotsCache) -> list[bool]:
        return await asyncio.gather(*(cache.allowed(http_server.url("/x/1")) for _ in range(10)))

    assert run(many) == [False] * 10
    assert len(http_server.requests_for("/robots.txt")) == 1


def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(http_server: LoopbackServer) -> None:
    http_server.route("/robots.txt", handler=lambda request: (
        http_server._stopping.wait(0.3), Reply(200, {}, b"User-agent: *\nDisallow: /x\n"))[1])

    async def scenario(cache: RobotsCache) -> bool:
        impatient = asyncio.ensure_future(cache.allowed(http_server.url("/x/1")))
        patient = asyncio.ensure_future(cache.allowed(http_server.url("/x/2")))
        await asyncio.sleep(0.05)
        impatient.cancel()
        return await patient

    assert run(scenario) is False
    assert len(http_server.requests_for("/robots.txt")) == 1


def test_cached_for_ttl_then_fetched_again(http_server: LoopbackServer) -> None:
    robots(http_server)
    clock = Clock()

    async def scenario(cache: RobotsCache) -> None:
        await cache.allowed(http_server.url("/a"))
        clock.t += 24 * 3600 - 1
        await cache.allowed(http_server.url("/a"))
        assert len(http_server.requests_for("/robots.txt")) == 1
        clock.t += 2
        await cache.allowed(http_server.url("/a"))
        assert len(http_server.requests_for("/robots.txt")) == 2

    run(scenario, clock=clock)


def test_hosts_are_separate(http_server: LoopbackServer) -> None:
    # One server, two origins: the robots.txt depends on the Host header.
    def by_host(request: Request) -> Reply:
        closed = request.headers["Host"].startswith("localhost")
        return Reply(200, {"Content-Type": "text/plain"},
                     b"User-agent: *\nDisallow: /\n" if closed else b"User-agent: *\nAllow: /\n")

    http_server.route("/robots.txt", handler=by_host)
    port = http_server.port

    async def both(cache: RobotsCache) -> tuple[bool, bool, bool]:
        return (await cache.allowed(f"http://127.0.0.1:{port}/a"),
                await cache.allowed(f"http://localhost:{port}/a"),
                await cache.allowed(f"http://127.0.0.1:{port}/b"))

    assert run(both) == (True, False, True)
    assert len(http_server.requests_for("/robots.txt")) == 2


def test_crawl_delay(http_server: LoopbackServer) -> None:
    robots(http_server)

    async def scenario(cache: RobotsCache) -> tuple[float | None, float | None]:
        before = cache.crawl_delay(http_server.url("/a"))  # nothing cached yet
        await cache.allowed(http_server.url("/a"))
        return before, cache.crawl_delay(http_server.url("/b"))

    assert run(scenario) == (None, 3.0)


def test_crawl_delay_absent(http_server: LoopbackServer) -> None:
    robots(http_server, b"User-agent: *\nDisallow: /private/\n")

    async def scenario(cache: RobotsCache) -> float | None:
        await cache.allowed(http_server.url("/a"))
        return cache.crawl_delay(http_server.url("/a"))

    assert run(scenario) is None


def test_huge_robots_txt_is_cut_at_500_kib(http_server: LoopbackServer) -> None:
    filler = b"# " + b"x" * 98 + b"\n"
    body = (b"User-agent: *\nDisallow: /early/\n" + filler * (MAX_ROBOTS_BYTES // len(filler))
            + b"Disallow: /late/\n")
    assert len(body) > MAX_ROBOTS_BYTES
    robots(http_server, body)

    async def scenario(cache: RobotsCache) -> tuple[bool, bool]:
        return (await cache.allowed(http_server.url("/early/1")),
                await cache.allowed(http_server.url("/late/1")))

    assert run(scenario) == (False, True)  # the rule past 500 KiB is never read


def test_robots_txt_over_max_body_is_unreachable(http_server: LoopbackServer) -> None:
    http_server.huge("/robots.txt", 2 * 1024 * 1024)
    policy = FetchPolicy(user_agent=AGENT, allow_private_networks=True, max_body=1024 * 1024)
    assert run(lambda c: c.allowed(http_server.url("/a")), policy=policy) is False


@pytest.mark.parametrize("body", [
    b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\n" * 500,
    b"<html><body><h1>Welcome</h1></body></html>",
    b"User-agent: *\nDisallow /missing-colon\nCrawl-delay: soon\nAllow:\n\x00\n",
    "User-agent: *\nDisallow: /caf\u00e9/\n".encode("latin-1"),
    b"\xef\xbb\xbfUser-agent: *\nDisallow: /bom/\n",
    b"",
])
def test_garbage_does_not_crash(http_server: LoopbackServer, body: bytes) -> None:
    robots(http_server, body)

    async def scenario(cache: RobotsCache) -> tuple[bool, float | None]:
        return await cache.allowed(http_server.url("/a")), cache.crawl_delay(http_server.url("/a"))

    allowed, delay = run(scenario)
    assert allowed is True and delay is None


def test_bom_is_ignored(http_server: LoopbackServer) -> None:
    robots(http_server, b"\xef\xbb\xbfUser-agent: *\nDisallow: /bom/\n")
    assert run(lambda c: c.allowed(http_server.url("/bom/1"))) is False


def test_redirects_are_followed(http_server: LoopbackServer) -> None:
    http_server.redirect("/robots.txt", "/real-robots.txt", status=301)
    http_server.route("/real-robots.txt", b"User-agent: *\nDisallow: /x/\n")
    assert run(lambda c: c.allowed(http_server.url("/x/1"))) is False


def test_too_many_redirects_means_unavailable(http_server: LoopbackServer) -> None:
    http_server.redirect_chain("/hop", 7)
    http_server.redirect("/robots.txt", "/hop/0")
    assert run(lambda c: c.allowed(http_server.url("/x/1"))) is True


@pytest.mark.parametrize("url", ["not a url", "ftp://example.org/file", "http:///nohost",
                                 "http://[::1", "http://example.org:99999/"])
def test_urls_without_an_origin_are_not_allowed(url: str) -> None:
    assert run(lambda c: c.allowed(url)) is False


# --------------------------------------------------------------------------- unreachable hosts


def test_unreachable_is_retried_after_retry_delay(http_server: LoopbackServer) -> None:
    state = {"status": 500}
    http_server.route("/robots.txt", handler=lambda request: Reply(
        state["status"], {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /x/\n"))
    clock = Clock()

    async def scenario(cache: RobotsCache) -> list[bool]:
        seen = [await cache.allowed(http_server.url("/a"))]
        clock.t += 300
        seen.append(await cache.allowed(http_server.url("/a")))   # still cached
        state["status"] = 200
        clock.t += 301
        seen.append(await cache.allowed(http_server.url("/a")))   # asked again
        seen.append(await cache.allowed(http_server.url("/x/1")))
        return seen

    assert run(scenario, clock=clock) == [False, False, True, False]
    assert len(http_server.requests_for("/robots.txt")) == 2


def test_retry_after_on_503_delays_the_retry(http_server: LoopbackServer) -> None:
    http_server.status("/robots.txt", 503, retry_after="3600")
    clock = Clock()

    async def scenario(cache: RobotsCache) -> None:
        await cache.allowed(http_server.url("/a"))
        clock.t += 1800
        await cache.allowed(http_server.url("/a"))
        assert len(http_server.requests_for("/robots.txt")) == 1
        clock.t += 1801
        await cache.allowed(http_server.url("/a"))
        assert len(http_server.requests_for("/robots.txt")) == 2

    run(scenario, clock=clock)


def test_unreachable_for_a_day_falls_back_to_allowed(http_server: LoopbackServer) -> None:
    http_server.status("/robots.txt", 500)
    clock = Clock()

    async def scenario(cache: RobotsCache) -> list[bool]:
        seen = []
        for _ in range(4):
            seen.append(await cache.allowed(http_server.url("/a")))
            clock.t += 8 * 3600
        return seen

    assert run(scenario, clock=clock) == [False, False, False, True]


def test_an_earlier_answer_stands_while_unreachable(http_server: LoopbackServer) -> None:
    state = {"status": 200}
    http_server.route("/robots.txt", handler=lambda request: Reply(
        state["status"], {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /x/\n"))
    clock = Clock()

    async def scenario(cache: RobotsCache) -> list[object]:
        seen: list[object] = [await cache.allowed(http_server.url("/a"))]
        state["status"] = 503
        clock.t += 24 * 3600 + 1
        seen += [await cache.allowed(http_server.url("/a")),
                 await cache.allowed(http_server.url("/x/1")),
                 cache.crawl_delay(http_server.url("/a"))]
        return seen

    assert run(scenario, clock=clock) == [True, True, False, None]
    assert len(http_server.requests_for("/robots.txt")) == 2


def test_an_earlier_404_stands_while_unreachable(http_server: LoopbackServer) -> None:
    state = {"status": 404}
    http_server.route("/robots.txt", handler=lambda request: Reply(state["status"], {}, b""))
    clock = Clock()

    async def scenario(cache: RobotsCache) -> list[bool]:
        seen = [await cache.allowed(http_server.url("/a"))]
        state["status"] = 500
        clock.t += 24 * 3600 + 1
        seen.append(await cache.allowed(http_server.url("/a")))
        return seen

    assert run(scenario, clock=clock) == [True, True]

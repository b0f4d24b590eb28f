"""The web page, feeds and API (DESIGN.md, "Web page, feeds and API"): a Starlette
app over the store, served by uvicorn (``monitor.service.web.server``).

Every store call runs on the store's own thread (``storage.boundary``), never on
the event loop: in ``run --http`` the loop is the daemon's, and a slow query must
not hold up its polling. The app also has a store connection of its own (see
``monitor.service.daemon``).

Every page works without JavaScript, and none carries any (see the CSP in
``security``). Templates autoescape, and every value printed in one passes
through the secret redactor (Jinja's ``finalize``), so no ``${VAR}`` value can reach
a page, whatever text carries it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.config import Config
from monitor.dedup import fingerprint
from monitor.errors import FetchError, MonitorError, QueryError
from monitor.match.query import Document, compile_query
from monitor.match.rulecheck import Article
from monitor.match.snippets import segments
from monitor.redaction import redactor
from monitor.runtime import fetch_policy
from monitor.service.web import views
from monitor.service.web.feeds import atom_feed
from monitor.service.web.ruletest import pasted_article, try_rule
from monitor.service.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    Guard,
    same_origin,
)
from monitor.sources.fetch import Fetcher
from monitor.text.dates import parse_iso
from monitor.text.extract import extract_article
from storage.base import AlertRow, Store
from storage.boundary import async_store

log = logging.getLogger("monitor.web")

HERE = Path(__file__).parent
PAGE_SIZE = 50
API_MAX_LIMIT = 500
FEED_SIZE = 50
SEARCH_SCAN = 2000          # alerts a search on the page looks through, newest first
MAX_FORM_TEXT = 1_000_000   # characters of pasted article text
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
           "90d": timedelta(days=90)}


def create_app(config: Config, store: Store, *,
               health: Callable[[], tuple[int, dict]] | None = None,
               metrics: Callable[[], str] | None = None) -> Starlette:
    """The app over ``store``. ``health`` and ``metrics`` come from the daemon
    (``run --http``); without them (``serve``), /healthz checks the store and
    /metrics is not there."""
    web = Web(config, store, health=health, metrics=metrics)
    routes = [
        Route("/", web.alerts_page),
        Route("/stories/{story_id}", web.story_page),
        Route("/stories/{story_id}/mute", web.mute, methods=["POST"]),
        Route("/stories/{story_id}/unmute", web.unmute, methods=["POST"]),
        Route("/sources", web.sources_page),
        Route("/rules", web.rules_page),
        Route("/rules/test", web.rule_test, methods=["POST"]),
        Route("/login", web.login_page, methods=["GET", "POST"]),
        Route("/logout", web.logout, methods=["POST"]),
        Route("/feeds/alerts.atom", web.alerts_feed),
        Route("/feeds/rules/{name}.atom", web.rule_feed),
        Route("/api/alerts", web.api_alerts),
        Route("/api/stories/{story_id}", web.api_story),
        Route("/api/sources", web.api_sources),
        Route("/healthz", web.healthz),
        Route("/metrics", web.metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes,
                     middleware=[Middleware(BaseHTTPMiddleware, dispatch=web.guard_request)],
                     exception_handlers={HTTPException: web.http_error})


class Web:
    def __init__(self, config: Config, store: Store, *, health=None, metrics=None):
        self.config = config
        self.store = store
        self.db = async_store(store)     # the store's thread: every store call goes there
        self.health_source = health
        self.metrics_source = metrics
        self.tz = ZoneInfo(config.web.timezone)
        self.redact = redactor(config.secrets)
        self.guard = Guard(config.web.token)
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(["html", "svg"]),
                               finalize=self._finalize)

    def _finalize(self, value: Any) -> Any:
        if isinstance(value, Markup) or not isinstance(value, str):
            return "" if value is None else value
        return self.redact(value)

    async def _read(self, fn, *args, **kwargs):
        return await run_in_threadpool(fn, *args, **kwargs)

    # request guard --------------------------------------------------------------
    async def guard_request(self, request: Request, call_next) -> Response:
        path = request.url.path
        if self.guard.needs_token(path) and not self.guard.authorised(request.headers,
                                                                      request.cookies):
            response = self._unauthorised(request)
        elif request.method == "POST" and not self.guard.bearer(request.headers) \
                and not same_origin(request.headers.get("origin"), request.headers.get("host")):
            response = PlainTextResponse("cross-site request refused\n", status_code=403)
        else:
            request.state.browser_id = (request.cookies.get(CSRF_COOKIE)
                                        or self.guard.new_browser_id())
            response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _unauthorised(self, request: Request) -> Response:
        path = request.url.path
        wants_page = (request.method == "GET" and not path.startswith(("/api/", "/feeds/"))
                      and path != "/metrics"
                      and "text/html" in request.headers.get("accept", ""))
        if wants_page:
            target = path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
        return JSONResponse({"error": "a token is needed: Authorization: Bearer TOKEN"},
                            status_code=401,
                            headers={"WWW-Authenticate": 'Bearer, Basic realm="news-monitor"'})

    async def _form(self, request: Request) -> dict:
        """The POST's fields, once its CSRF token is checked."""
        async with request.form(max_files=0, max_fields=20, max_part_size=4 * MAX_FORM_TEXT) \
                as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not self.guard.bearer(request.headers) and not self.guard.csrf_valid(
                request.cookies.get(CSRF_COOKIE), fields.get(CSRF_FIELD)):
            raise HTTPException(403, "the form has expired or did not come from this page: "
                                     "reload the page and try again")
        return fields

    # rendering --------------------------------------------------------------------
    def page(self, request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        context.update(
            request_path=request.url.path, tz=self.config.web.timezone,
            csrf=self.guard.csrf_token(request.state.browser_id),
            csrf_field=CSRF_FIELD, signed_in=self.guard.token is not None,
            rules=[r.name for r in self.config.rules],
            sources=[s.name for s in self.config.sources])
        response = HTMLResponse(self.env.get_template(template).render(**context),
                                status_code=status)
        if request.cookies.get(CSRF_COOKIE) != request.state.browser_id:
            # Only pages with forms set it: a request the browser makes alongside
            # (an icon, a style sheet) must not replace the id the forms were signed for.
            response.set_cookie(CSRF_COOKIE, request.state.browser_id, httponly=True,
                                samesite="strict", path="/",
                                secure=request.url.scheme == "https")
        return response

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)       # the only kind it is registered for
        path = request.url.path
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if path.startswith(("/api/", "/feeds/")) or not hasattr(request.state, "browser_id"):
            return JSONResponse({"error": message}, status_code=exc.status_code)
        return self.page(request, "error.html", status=exc.status_code,
                         status_code=exc.status_code, message=message)

    # alerts page ----------------------------------------------------------------
    def _filters(self, params) -> dict:
        rule = params.get("rule") or None
        source = params.get("source") or None
        period = params.get("period") or ""
        if period and period not in PERIODS:
            raise HTTPException(400, f"unknown period {period!r}: use one of "
                                     f"{', '.join(PERIODS)}")
        since = datetime.now(UTC) - PERIODS[period] if period else None
        return {"rule": rule, "source": source, "since": since, "period": period}

    @staticmethod
    def _cursor(value: str | None) -> tuple[datetime, str] | None:
        if not value:
            return None
        when, _, alert_id = value.partition("~")
        parsed = parse_iso(when)
        if parsed is None or not alert_id:
            raise HTTPException(400, "bad paging cursor")
        return parsed, alert_id

    @staticmethod
    def _cursor_of(row: AlertRow) -> str:
        return f"{row.created_at.isoformat()}~{row.alert_id}"

    async def alerts_page(self, request: Request) -> Response:
        params = request.query_params
        f = self._filters(params)
        before = self._cursor(params.get("before"))
        q = (params.get("q") or "").strip()
        error = None
        scanned_all = True
        if q:
            try:
                rows, more, scanned_all = await self.db.call(self._search, q, f, before)
            except QueryError as exc:
                rows, more, error = [], None, f"query error: {exc}"
        else:
            rows = await self.db.list_alerts(limit=PAGE_SIZE + 1,
                                    rule=f["rule"], source=f["source"], since=f["since"],
                                    before=before)
            more = rows[PAGE_SIZE - 1] if len(rows) > PAGE_SIZE else None
            rows = rows[:PAGE_SIZE]
        muted = set(await self.db.muted_stories({r.story_id for r in rows}))
        next_link = None
        if more is not None:
            keep = {k: v for k, v in (("rule", f["rule"]), ("source", f["source"]),
                                      ("period", f["period"]), ("q", q)) if v}
            next_link = "/?" + urlencode({**keep, "before": self._cursor_of(more)})
        # A form's mistake is shown on the page, as the page: not an HTTP error.
        return self.page(request, "alerts.html",
                         threads=views.threads(rows, self.tz, muted), filters=f, q=q,
                         error=error, next_link=next_link, scanned_all=scanned_all,
                         search_scan=SEARCH_SCAN, periods=list(PERIODS),
                         rule_names=sorted({r.name for r in self.config.rules} | {"source-health"}))

    def _search(self, q: str, f: dict, before) -> tuple[list[AlertRow], AlertRow | None, bool]:
        """Alerts whose article the query matches, newest first: a page of them, the
        last one looked at (to go on from), and whether every alert was looked at."""
        query = compile_query(q)
        hits: list[AlertRow] = []
        scanned = 0
        last: AlertRow | None = None
        while scanned < SEARCH_SCAN:
            rows = self.store.list_alerts(limit=200, rule=f["rule"], source=f["source"],
                                          since=f["since"], before=before)
            if not rows:
                return hits, None, True
            for row in rows:
                scanned += 1
                last = row
                article = self.store.get_article(row.article_id) if row.article_id > 0 else None
                record = row.record
                doc = Document.build(
                    title=article.title if article else record.get("title") or "",
                    text=article.text if article else record.get("snippet") or "",
                    source=row.source or record.get("source") or "",
                    url=article.url if article else record.get("url") or "")
                if query.match(doc):
                    hits.append(row)
                    if len(hits) == PAGE_SIZE:
                        return hits, row, False
            before = (rows[-1].created_at, rows[-1].alert_id)
        return hits, last, False

    # story page -------------------------------------------------------------------
    def _story(self, story_id: str):
        if not self.store.story_exists(story_id):
            return None
        articles = self.store.story_articles(story_id)
        alerts = self.store.list_alerts(story_id=story_id, limit=500)
        muted = self.store.muted_stories([story_id]).get(story_id)
        originals = {a.id: a for a in articles if a.duplicate_of is None}
        copies = [a for a in articles if a.duplicate_of is not None]
        signatures = self.store.article_signatures([a.id for a in articles])
        similarity: dict[int, float] = {}
        for copy in copies:
            original = originals.get(copy.duplicate_of) if copy.duplicate_of else None
            if original is None:
                continue
            if copy.content_hash and copy.content_hash == original.content_hash:
                similarity[copy.id] = 1.0
            elif copy.id in signatures and original.id in signatures:
                similarity[copy.id] = round(fingerprint.similarity(
                    fingerprint.signature_from_bytes(signatures[copy.id]),
                    fingerprint.signature_from_bytes(signatures[original.id])), 2)
        return articles, alerts, muted, similarity

    async def _story_or_404(self, story_id: str):
        """The story's articles, alerts, mute and similarities (``_story``), read on
        the store's thread; a 404 for a story the store does not know."""
        story = await self.db.call(self._story, story_id)
        if story is None:
            raise HTTPException(404, "no such story")
        return story

    async def story_page(self, request: Request) -> Response:
        story_id = request.path_params["story_id"]
        articles, alerts, muted, similarity = await self._story_or_404(story_id)
        return self.page(request, "story.html", story_id=story_id,
                         articles=views.story_articles(articles, similarity, self.tz),
                         alerts=[views.alert_view(a, self.tz, muted_story=False)
                                 for a in alerts],
                         muted=muted is not None,
                         muted_at=views.local_time(muted, self.tz) if muted else None)

    async def mute(self, request: Request) -> Response:
        return await self._set_mute(request, True)

    async def unmute(self, request: Request) -> Response:
        return await self._set_mute(request, False)

    async def _set_mute(self, request: Request, mute: bool) -> Response:
        story_id = request.path_params["story_id"]
        await self._form(request)
        if not await self.db.story_exists(story_id):
            raise HTTPException(404, "no such story")
        if mute:
            await self.db.mute_story(story_id, datetime.now(UTC))
        else:
            await self.db.unmute_story(story_id)
        log.info("story %s %s from the web page", story_id, "muted" if mute else "unmuted",
                 extra={"event": "mute" if mute else "unmute"})
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    # sources page -----------------------------------------------------------------
    def _sources(self) -> list[views.SourceView]:
        today = datetime.now(UTC).date()
        days = views.chart_days(today)
        since = datetime.combine(today - timedelta(days=views.CHART_DAYS - 1),
                                 datetime.min.time(), UTC)
        states = self.store.all_source_states()
        polls = self.store.poll_days(since)
        alerts = self.store.alert_days(since)
        return [views.source_view(s, states.get(s.name), polls, alerts, days, self.tz,
                                  self.redact) for s in self.config.sources]

    async def sources_page(self, request: Request) -> Response:
        return self.page(request, "sources.html", source_views=await self.db.call(self._sources),
                         chart_days=views.CHART_DAYS)

    # rules page -------------------------------------------------------------------
    async def rules_page(self, request: Request, trial=None, error: str | None = None,
                         form: dict | None = None, status: int = 200) -> Response:
        return self.page(request, "rules.html", status=status, rule_list=self.config.rules,
                         trial=trial, error=error, form=form or {},
                         trial_pieces=segments(*trial["snippet"]) if trial else [])

    async def rule_test(self, request: Request) -> Response:
        form = await self._form(request)
        name = form.get("rule", "")
        rule = next((r for r in self.config.rules if r.name == name), None)
        if rule is None:
            raise HTTPException(404, "no such rule")
        url = (form.get("url") or "").strip()
        pasted = (form.get("text") or "")[:MAX_FORM_TEXT]
        try:
            if url:
                article = await self._fetch_article(url)
            elif pasted.strip():
                article = await self._read(pasted_article, pasted)
            else:
                return await self.rules_page(request, error="give a URL or paste a text",
                                             form=form)
        except (MonitorError, OSError) as exc:
            return await self.rules_page(request, error=f"cannot read the article: {exc}",
                                         form=form)
        trial = await self._read(try_rule, rule.name, rule.query, article)
        return await self.rules_page(request, trial=trial, form=form)

    async def _fetch_article(self, url: str) -> Article:
        # Through the fetcher: its limits and its refusal of private addresses.
        fetcher = Fetcher(fetch_policy(self.config))
        try:
            response = await fetcher.get(url)
        finally:
            await fetcher.aclose()
        extracted = await run_in_threadpool(extract_article, response.body, url=response.url,
                                            charset=response.charset)
        if extracted is None:
            raise FetchError("no article text could be extracted from the page")
        return Article(extracted.title or "", extracted.text or "", response.url)

    # login ------------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        target = request.query_params.get("next") or "/"
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            target = "/"
        if self.guard.token is None:
            return RedirectResponse(target, status_code=303)
        if request.method == "GET":
            return self.page(request, "login.html", next=target, error=None)
        form = await self._form(request)
        if not self.guard.token_matches(form.get("token", "")):
            return self.page(request, "login.html", next=target, error="wrong token")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, self.guard.new_session(), max_age=SESSION_MAX_AGE,
                            httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https")
        return response

    async def logout(self, request: Request) -> Response:
        await self._form(request)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # feeds --------------------------------------------------------------------------
    async def alerts_feed(self, request: Request) -> Response:
        rows = await self.db.list_alerts(limit=FEED_SIZE)
        return self._feed(request, rows, "news-monitor: alerts", "urn:news-monitor:alerts", "/")

    async def rule_feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in {r.name for r in self.config.rules} | {"source-health"}:
            raise HTTPException(404, "no such rule")
        rows = await self.db.list_alerts(limit=FEED_SIZE, rule=name)
        return self._feed(request, rows, f"news-monitor: {name}",
                          f"urn:news-monitor:rule:{name}", "/?" + urlencode({"rule": name}))

    def _feed(self, request: Request, rows, title: str, feed_id: str, page: str) -> Response:
        base = str(request.base_url).rstrip("/")
        body = atom_feed(rows, title=title, feed_id=feed_id, self_url=str(request.url),
                         page_url=base + page, redact=self.redact)
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    # API ----------------------------------------------------------------------------
    def _api_alert(self, row: AlertRow) -> dict:
        return {**row.record, "created_at": row.created_at.isoformat(),
                "muted": row.muted,
                "deliveries": [{"notifier": d.notifier, "state": d.state,
                                "attempts": d.attempts, "last_error": d.last_error,
                                "next_attempt": d.next_attempt.isoformat()
                                if d.next_attempt and d.state == "pending" else None}
                               for d in row.deliveries]}

    def _json(self, data: Any, status: int = 200) -> Response:
        # Redacted as text: a secret is a secret wherever in the document it sits.
        text = self.redact(json.dumps(data, ensure_ascii=False))
        return Response(text, status_code=status, media_type="application/json")

    async def api_alerts(self, request: Request) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit") or PAGE_SIZE)
        except ValueError:
            raise HTTPException(400, "limit: expected a number") from None
        if not 1 <= limit <= API_MAX_LIMIT:
            raise HTTPException(400, f"limit: expected 1 to {API_MAX_LIMIT}")
        since = None
        if params.get("since"):
            since = parse_iso(params["since"])
            if since is None:
                raise HTTPException(400, "since: expected an ISO 8601 date or time")
        before = self._cursor(params.get("before"))
        rows = await self.db.list_alerts(limit=limit + 1,
                                rule=params.get("rule") or None,
                                source=params.get("source") or None, since=since,
                                before=before)
        next_link = None
        if len(rows) > limit:
            rows = rows[:limit]
            keep = {k: params[k] for k in ("rule", "source", "since", "limit") if params.get(k)}
            next_link = "/api/alerts?" + urlencode({**keep, "before": self._cursor_of(rows[-1])})
        return self._json({"alerts": [self._api_alert(r) for r in rows], "next": next_link})

    async def api_story(self, request: Request) -> Response:
        story_id = request.path_params["story_id"]
        articles, alerts, muted, similarity = await self._story_or_404(story_id)
        return self._json({
            "story_id": story_id, "muted": muted is not None,
            "muted_at": muted.isoformat() if muted else None,
            "articles": [{"id": a.id, "url": a.url, "title": a.title, "source": a.source,
                          "published": a.published.isoformat() if a.published else None,
                          "fetched_at": a.fetched_at.isoformat(),
                          "duplicate_of": a.duplicate_of,
                          "similarity": similarity.get(a.id)} for a in articles],
            "alerts": [self._api_alert(a) for a in alerts]})

    async def api_sources(self, request: Request) -> Response:
        sources = await self.db.call(self._sources)
        states = await self.db.all_source_states()
        out = []
        for view, source in zip(sources, self.config.sources, strict=False):
            st = states.get(source.name)
            out.append({
                "name": source.name, "kind": source.kind, "url": view.url,
                "interval": source.interval,
                "interval_in_force": ((st.next_poll - st.last_polled).total_seconds()
                                      if st and st.next_poll and st.last_polled else None),
                "last_success": st.last_success.isoformat() if st and st.last_success else None,
                "last_error": st.last_error if st else None,
                "last_error_at": st.last_error_at.isoformat() if st and st.last_error_at else None,
                "consecutive_failures": st.consecutive_failures if st else 0,
                "next_poll": st.next_poll.isoformat() if st and st.next_poll else None,
                "days": [asdict(d) for d in view.days]})
        return self._json(out)

    # health -------------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        if self.health_source is not None:
            status, body = self.health_source()
        else:
            try:
                await self.db.all_source_states()
                status, body = 200, {"status": "ok"}
            except MonitorError as exc:
                status, body = 503, {"status": "failing", "error": self.redact(str(exc))}
        return JSONResponse(body, status_code=status)

    async def metrics(self, request: Request) -> Response:
        if self.metrics_source is None:
            raise HTTPException(404, "metrics are served by the daemon (run --http)")
        text = await self.db.call(self.metrics_source)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

"""The web application (FastAPI, server-rendered Jinja2 templates, no JavaScript): HTML pages, the JSON
API behind them (`/api/…`, described at `/openapi.json`) and Atom feeds. Every URL of a snapshot, diff
or alert names ids, never "latest", so a link in a digest or a court filing keeps its meaning.

Safe by default: read-only database access, every piece of page text escaped by Jinja2, only http(s)
URLs become links, a Content-Security-Policy that allows no script on any page, archived raw bodies
served sandboxed, and a token (HTTP Basic password or Bearer) required when one is configured."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine

from kvwatch.web import views
from kvwatch.web.feeds import atom
from store.db import session_scope
from store.errors import NotFound, UsageError

PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'self'")
RAW_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html", "j2"]),
                   trim_blocks=True, lstrip_blocks=True)


def create_app(engine: Engine, public_url: str = "", token: str = "") -> FastAPI:
    app = FastAPI(title="kvwatch", description="K-visa changes on official pages: the JSON API behind kvwatch's web page.",
                  docs_url=None, redoc_url=None)  # the interactive docs load scripts from a CDN; /openapi.json is enough

    def base(request: Request) -> str:
        return public_url.rstrip("/") or str(request.base_url).rstrip("/")

    def read(view: Callable[..., Any], *args: Any) -> Any:
        with session_scope(engine) as session:
            return view(session, *args)

    def page(template: str, request: Request, **data: Any) -> HTMLResponse:
        return HTMLResponse(_ENV.get_template(template).render(base=base(request), **data))

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if token and not _authorized(request.headers.get("authorization", ""), token):
            return PlainTextResponse("kvwatch: a token is required", status_code=401, headers={"WWW-Authenticate": 'Basic realm="kvwatch"'})
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(UsageError)
    async def bad_request(request: Request, exc: UsageError) -> Response:
        return _error(request, 400, str(exc))

    def filters(kind: str | None, relevant: str | None, field: str | None, page_id: str | None, tag: str | None, since: str | None) -> dict[str, Any]:
        moment = None
        if since:
            try:
                moment = datetime.fromisoformat(since.replace("Z", "+00:00")).replace(tzinfo=None)
            except ValueError:
                raise UsageError(f"since must be an ISO date or time, not {since!r}") from None
        return views.alert_filters(kind, relevant in ("1", "true", "yes"), field, page_id, tag, moment)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    # --- HTML ---------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def now_page(request: Request) -> HTMLResponse:
        return page("now.html.j2", request, now=read(views.now_view))

    @app.get("/pages", response_class=HTMLResponse, include_in_schema=False)
    def pages_page(request: Request, tag: str | None = None) -> HTMLResponse:
        return page("pages.html.j2", request, data=read(views.pages_view, tag))

    @app.get("/pages/{page_id}", response_class=HTMLResponse, include_in_schema=False)
    def page_page(request: Request, page_id: str) -> HTMLResponse:
        return page("page.html.j2", request, p=read(views.page_view, page_id))

    @app.get("/snapshots/{snapshot_id}", response_class=HTMLResponse, include_in_schema=False)
    def snapshot_page(request: Request, snapshot_id: int) -> HTMLResponse:
        return page("snapshot.html.j2", request, s=read(views.snapshot_view, snapshot_id))

    @app.get("/snapshots/{snapshot_id}/raw", include_in_schema=False)
    def raw_page(snapshot_id: int, source: int = 0) -> Response:
        body, encoding = read(views.raw_view, snapshot_id)
        if source:
            return PlainTextResponse(body.decode(encoding, errors="replace"), headers={"Content-Security-Policy": RAW_CSP})
        return Response(body, media_type=f"text/html; charset={encoding}", headers={"Content-Security-Policy": RAW_CSP, "X-Frame-Options": "SAMEORIGIN"})

    @app.get("/diff", include_in_schema=False)
    def diff_form(request: Request, from_id: int = Query(alias="from"), to_id: int = Query(alias="to"), view: str = "inline") -> Response:
        """The page history's form (any two snapshots) → the diff's permanent URL."""
        return RedirectResponse(f"{base(request)}/diff/{from_id}/{to_id}" + ("?view=side" if view == "side" else ""), status_code=303)

    @app.get("/diff/{from_id}/{to_id}", response_class=HTMLResponse, include_in_schema=False)
    def diff_page(request: Request, from_id: int, to_id: int, view: str = "inline") -> HTMLResponse:
        if view not in ("inline", "side"):
            raise UsageError(f"view must be inline or side, not {view!r}")
        return page("diff.html.j2", request, d=read(views.diff_view, from_id, to_id), view=view)

    @app.get("/fields/{field}", response_class=HTMLResponse, include_in_schema=False)
    def field_page(request: Request, field: str, at: str | None = None) -> HTMLResponse:
        return page("field.html.j2", request, f=read(views.field_view, field, filters(None, None, None, None, None, at)["since"]))

    @app.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
    def alerts_page(request: Request, kind: str | None = None, relevant: str | None = None, field: str | None = None,
                    page_id: str | None = Query(None, alias="page"), tag: str | None = None, since: str | None = None) -> HTMLResponse:
        chosen = filters(kind, relevant, field, page_id, tag, since)
        return page("alerts.html.j2", request, data=read(views.alerts_view, chosen), query=str(request.url.query))

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse, include_in_schema=False)
    def alert_page(request: Request, alert_id: int) -> HTMLResponse:
        return page("alert.html.j2", request, a=read(views.alert_view, alert_id))

    @app.get("/feeds/alerts.atom", include_in_schema=False)
    def feed(request: Request, kind: str | None = None, relevant: str | None = None, field: str | None = None,
             page_id: str | None = Query(None, alias="page"), tag: str | None = None, since: str | None = None) -> Response:
        chosen = filters(kind, relevant, field, page_id, tag, since)
        data = read(views.alerts_view, chosen, 100)
        shown = {k: (v if not isinstance(v, datetime) else since or "") for k, v in chosen.items()}
        return Response(atom(data["alerts"], shown, base(request)), media_type="application/atom+xml; charset=utf-8")

    # --- JSON API -----------------------------------------------------------------------------
    @app.get("/api/now")
    def api_now() -> JSONResponse:
        """K visa now: per field, each source's current value, whether official sources disagree, the latest fact alerts."""
        return JSONResponse(read(views.now_view))

    @app.get("/api/pages")
    def api_pages(tag: str | None = None) -> JSONResponse:
        """Every watched page with its tags and health; `tag=country:ke` filters."""
        return JSONResponse(read(views.pages_view, tag))

    @app.get("/api/pages/{page_id}")
    def api_page(page_id: str) -> JSONResponse:
        """A page's snapshots (its timeline) and latest fetch attempts."""
        return JSONResponse(read(views.page_view, page_id))

    @app.get("/api/snapshots/{snapshot_id}")
    def api_snapshot(snapshot_id: int) -> JSONResponse:
        """A snapshot's normalized text and links."""
        return JSONResponse(read(views.snapshot_view, snapshot_id))

    @app.get("/api/diff/{from_id}/{to_id}")
    def api_diff(from_id: int, to_id: int) -> JSONResponse:
        """The diff between two snapshots of a page: ops (= unchanged, - removed, + added), and each side."""
        return JSONResponse(read(views.diff_view, from_id, to_id))

    @app.get("/api/fields/{field}")
    def api_field(field: str, at: str | None = None) -> JSONResponse:
        """A fact field across all sources over time; `at=2025-10-01` adds what each source said then."""
        return JSONResponse(read(views.field_view, field, filters(None, None, None, None, None, at)["since"]))

    @app.get("/api/alerts")
    def api_alerts(kind: str | None = None, relevant: str | None = None, field: str | None = None,
                   page_id: str | None = Query(None, alias="page"), tag: str | None = None, since: str | None = None) -> JSONResponse:
        """Alerts, newest first, filtered as the alerts page and the feeds are."""
        data = read(views.alerts_view, filters(kind, relevant, field, page_id, tag, since))
        return JSONResponse({**data, "filters": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data["filters"].items()}})

    @app.get("/api/alerts/{alert_id}")
    def api_alert(alert_id: int) -> JSONResponse:
        """One alert, with the snapshots it links and its facts' evidence."""
        return JSONResponse(read(views.alert_view, alert_id))

    return app


def _error(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return HTMLResponse(_ENV.get_template("error.html.j2").render(status=status, message=message, base=""), status_code=status)


def _authorized(header: str, token: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip(), token)
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password, token)
    return False

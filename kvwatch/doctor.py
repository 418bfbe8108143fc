"""`kvwatch doctor`: check everything a run needs and say exactly what is wrong.

Each check returns (ok, name, detail). Network checks touch only the configured SMTP server (a
connection and EHLO, no mail) and never post to Slack (the webhook URL is only validated).
"""

from __future__ import annotations

import os
import smtplib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from store.db import make_engine, masked, schema_revision
from store.errors import KvwatchError


@dataclass(frozen=True)
class Check:
    ok: bool
    name: str
    detail: str
    warn: bool = False  # works, but something will go wrong or leak (printed WARN, not counted as a failure)


def run_checks(db_url: str, watchlist_path: str, subscribers_path: str, how: dict[str, str] | None = None) -> list[Check]:
    how = how or {}
    files = f"watchlist {watchlist_path} ({how.get('watchlist', 'named')}); subscribers {subscribers_path} ({how.get('subscribers', 'named')}); " \
            f"database {masked(db_url)} ({how.get('database', 'named')})"
    watchlist, check = _watchlist(watchlist_path)
    checks = [Check(True, "files", files), check, *_database(db_url), _browser(watchlist), *_broker(watchlist, db_url)]
    subs, sub_check = _subscribers(subscribers_path, watchlist)
    checks.append(sub_check)
    if subs and any(s.email for s in subs):
        checks.append(_smtp())
    checks += [_url_variable(f"slack {s.id}", s.slack, "the incoming-webhook URL") for s in subs if s.slack]
    checks += [_url_variable(f"webhook {s.id}", s.webhook, "the webhook URL") for s in subs if s.webhook]
    checks += [_apprise(s.id, name) for s in subs for name in s.apprise]
    if subs and checks[2].ok:  # the database answered
        checks += _failed_channels(db_url)
    return checks


def _failed_channels(db_url: str) -> list[Check]:
    """Channels that refused for good (a deleted webhook, an archived Slack channel): each is a FAIL until fixed."""
    from store.db import session_scope
    from store.deliveries import failed_by_subscriber

    try:
        engine = make_engine(db_url)
        with session_scope(engine) as session:
            failed = failed_by_subscriber(session)
        engine.dispose()
    except KvwatchError:
        return []
    return [Check(False, f"delivery {sub}", f"{channel} refused for good: {reason}") for sub, channels in failed.items() for channel, reason in channels.items()]


def _watchlist(path: str) -> tuple[Any, Check]:
    from crawler.watchlist import load

    try:
        wl = load(path)
    except KvwatchError as exc:
        return None, Check(False, "watchlist", str(exc))
    return wl, Check(True, "watchlist", f"{path}: {len(wl.pages)} pages, {sum(p.enabled for p in wl.pages)} enabled")


def _database(url: str) -> list[Check]:
    try:
        engine = make_engine(url)
        current, head = schema_revision(engine)
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        detail = (str(exc).splitlines() or [""])[0].replace(url, masked(url))
        return [Check(False, "database", f"{masked(url)}: {type(exc).__name__}: {detail}")]
    note = "" if current == head else " (any command that opens the database migrates it)"
    migrations = Check(current == head, "migrations", f"at {current or 'an empty schema'}, newest is {head}{note}")
    return [Check(True, "database", f"{engine.url.render_as_string(hide_password=True)} answers"), migrations]


def _browser(watchlist: Any) -> Check:
    """Is there a browser for pages behind a JavaScript challenge, and which? Missing is a failure only
    when the watchlist has `render = "browser"` pages; otherwise a warning (a challenged page will be blocked)."""
    from crawler import browser

    found = browser.find()
    if found.ok and found.executable:
        from importlib.metadata import version as package_version

        return Check(True, "browser", f"{browser.version(found.executable)} at {found.executable} (scrapy-playwright {package_version('scrapy-playwright')})")
    needing = [p.id for p in (watchlist.pages if watchlist else ()) if p.render == "browser" and p.enabled]
    if needing:
        return Check(False, "browser", f"{found.missing}; pages with render = \"browser\": {', '.join(needing[:5])}{' …' if len(needing) > 5 else ''}")
    return Check(True, "browser", f"none: a page behind a JavaScript challenge will be blocked. {found.missing[0].upper()}{found.missing[1:]}", warn=True)


def _broker(watchlist: Any, db_url: str) -> list[Check]:
    """With $KVWATCH_BROKER: does the broker answer, is the store one workers can share, and which regions
    have a live worker (a region a page needs with no worker is a failure). Without it: regions are unused."""
    from crawler import dispatch

    needed = sorted({r for p in (watchlist.pages if watchlist else ()) if p.enabled for r in p.regions})
    url = dispatch.broker_url()
    if not url:
        if needed:
            return [Check(True, "broker", f"none ({dispatch.BROKER_ENV} not set): fine on one machine; the pages' regions "
                          f"({', '.join(needed)}) apply only to `--workers` cycles", warn=True)]
        return []
    try:
        workers = dispatch.live_workers(timeout=2.0)
    except KvwatchError as exc:
        return [Check(False, "broker", str(exc))]
    checks = [Check(True, "broker", f"{masked(url)} answers; queues {dispatch.queue_name(None).rsplit('.', 1)[0]}.*")]
    if not db_url.startswith("postgresql"):
        checks.append(Check(False, "broker", f"fetch workers share a PostgreSQL store, not {masked(db_url)}"))
    covered = {r for w in workers for r in w.regions}
    live = ", ".join(f"{w.name} ({', '.join(w.regions)})" for w in workers) or "none"
    missing = [r for r in needed if r not in covered]
    checks.append(Check(not missing, "workers", f"live: {live}" + (f"; no worker for region {', '.join(missing)}" if missing else ""),
                        warn=not workers and not missing))
    return checks


def _subscribers(path: str, watchlist: Any) -> tuple[tuple[Any, ...], Check]:
    from notifier.subscribers import load

    if not Path(path).exists():
        return (), Check(True, "subscribers", f"{path} not found: runs crawl but deliver nothing")
    try:
        subs = load(path, watchlist)
    except KvwatchError as exc:
        return (), Check(False, "subscribers", str(exc))
    return subs, Check(True, "subscribers", f"{path}: {len(subs)} subscribers")


def _smtp() -> Check:
    """Connects and says EHLO (sends nothing); warns when delivery would fail to log in or would send a
    password in clear."""
    from notifier.channels.email import SmtpSettings

    try:
        settings = SmtpSettings.from_env()
        timeout = min(settings.timeout, 10)
        with smtplib.SMTP(settings.host, settings.port, timeout=timeout) if settings.security != "tls" \
                else smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout) as client:
            code, _ = client.ehlo()
            if settings.security == "starttls":
                client.starttls()
                client.ehlo()
            auth = client.has_extn("auth")
    except (KvwatchError, smtplib.SMTPException, OSError) as exc:
        return Check(False, "smtp", f"cannot reach the SMTP server set by KVWATCH_SMTP_HOST/PORT: {type(exc).__name__}: {exc}")
    where = f"{settings.host}:{settings.port} answered EHLO with {code}; security {settings.security}, from {settings.sender}"
    if settings.user and settings.security == "none":
        return Check(True, "smtp", f"{where}; KVWATCH_SMTP_USER is set but the connection is not encrypted: the password would go in clear "
                                   "(set KVWATCH_SMTP_SECURITY=starttls or tls)", warn=True)
    if settings.user and not auth:
        return Check(True, "smtp", f"{where}; KVWATCH_SMTP_USER is set but the server offers no AUTH: logging in will fail", warn=True)
    return Check(code == 250, "smtp", where)


def _url_variable(name: str, variable: str, what: str) -> Check:
    url = os.environ.get(variable, "")
    if not url:
        return Check(False, name, f"environment variable {variable} is not set (it must hold {what})")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return Check(False, name, f"{variable} is not a URL")
    return Check(True, name, f"{variable} is set ({parts.scheme}://{parts.hostname}/…); not posted to")


def _apprise(sub_id: str, variable: str) -> Check:
    import apprise

    url = os.environ.get(variable, "")
    if not url:
        return Check(False, f"apprise {sub_id}", f"environment variable {variable} is not set (it must hold an Apprise URL)")
    if not apprise.Apprise().add(url):
        return Check(False, f"apprise {sub_id}", f"{variable} does not hold a URL Apprise understands")
    return Check(True, f"apprise {sub_id}", f"{variable} holds a {url.split(':', 1)[0]}:// URL; not sent to")

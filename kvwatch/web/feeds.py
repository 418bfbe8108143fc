"""Atom feeds of alerts (feedgen), with the same filters as the alerts page. Entry ids never change
meaning (`urn:kvwatch:alert:<id>`), `updated` is the alert's detection time, and the summary and the
evidence go into the entry content as text (feedgen escapes it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode


def atom(alerts: list[dict[str, Any]], filters: dict[str, str], base: str) -> bytes:
    from feedgen.feed import FeedGenerator  # imported here: only feeds need it

    query = urlencode(sorted((k, v) for k, v in filters.items() if v))
    fg = FeedGenerator()
    fg.id(f"urn:kvwatch:alerts{':' + query if query else ''}")
    fg.title("kvwatch: K-visa alerts" + (f" ({query.replace('&', ', ')})" if query else ""))
    fg.link(href=f"{base}/feeds/alerts.atom{'?' + query if query else ''}", rel="self")
    fg.link(href=f"{base}/alerts{'?' + query if query else ''}", rel="alternate")
    fg.author({"name": "kvwatch"})
    newest = max((a["detected_at"] for a in alerts), default="2025-01-01T00:00:00Z")
    fg.updated(_when(newest))
    for alert in reversed(alerts):  # feedgen prepends: oldest first in, newest first out
        entry = fg.add_entry()
        entry.id(f"urn:kvwatch:alert:{alert['id']}")
        entry.title(alert["summary"][:200] or f"{alert['kind']} on {alert['page_id']}")
        entry.updated(_when(alert["detected_at"]))
        entry.published(_when(alert["detected_at"]))
        entry.link(href=f"{base}/alerts/{alert['id']}", rel="alternate")  # one link: feedgen 1.0 writes no rel, so a second would be read as the alternate
        evidence = "\n".join(f"“{e}”" for e in alert["evidence"]) or alert["diff"][:2000]
        entry.content(f"{alert['summary']}\n\n{evidence}\n\nSource: {alert['url']}".strip(), type="text")
        entry.category(term=alert["kind"])
    return bytes(fg.atom_str(pretty=True))


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)

"""Classify a fetch attempt: ok, not_modified, blocked, maintenance or error, with a reason.

Only `ok` may produce a snapshot.
"""

from __future__ import annotations

import re

OUTCOMES = ("ok", "not_modified", "blocked", "maintenance", "error", "interrupted")  # interrupted: the crawl stopped first
FAILURES = ("blocked", "maintenance", "error")

_CHALLENGE = re.compile(rb"\$_ts|_\$[a-z]{2}|var\s+_0x[0-9a-f]+|document\.cookie\s*=|location\.(reload|replace)\(|window\.location\s*=|challenge|verify you are human|waf", re.I)
_MAINTENANCE = re.compile(r"系统维护|维护中|正在维护|升级维护|暂停服务|系统升级|under maintenance|temporarily unavailable|scheduled maintenance", re.I)
_TAGS = re.compile(rb"<script.*?</script>|<style.*?</style>|<[^>]+>", re.S | re.I)
_CLOSED = re.compile(rb"</(html|body)\s*>", re.I)
_OPENED = re.compile(rb"<(html|body)[\s>]", re.I)


def html_complete(body: bytes) -> bool:
    """Does an HTML document end as a whole document does (</body> or </html> near its end)?"""
    return bool(_CLOSED.search(body[-4096:]))


def truncated(body: bytes, declared_length: bool, was_complete: bool | None) -> str | None:
    """Why a 2xx body is cut off, or None. A PDF must end with %%EOF; an HTML document must end
    with </body> or </html> when the page's earlier good bodies did, must not end inside a tag, and,
    with no earlier body to go by and no Content-Length to vouch for the transfer, must close
    whatever <html> or <body> it opened."""
    head = body[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return None if b"%%EOF" in body[-2048:] else f"truncated PDF: no %%EOF marker at the end ({len(body)} bytes)"
    if not head.lstrip(b"\xef\xbb\xbf").startswith(b"<"):
        return None  # office documents are checked when opened; JSON and plain text have no closing tag to miss
    if html_complete(body):
        return None
    tail = body[-512:]
    if tail.rfind(b"<") > tail.rfind(b">"):
        return f"truncated: the document ends inside a tag after {len(body)} bytes"
    if was_complete:
        return f"truncated: the page's earlier bodies ended with </html>, this one stops after {len(body)} bytes"
    if was_complete is None and not declared_length and _OPENED.search(body[:65536]):
        return f"truncated: the document opens <html>/<body> but never closes it ({len(body)} bytes, no Content-Length)"
    return None


def classify_status(status: int, body: bytes) -> tuple[str, str] | None:
    """The outcome decided by status and raw body alone, or None if the body must be read."""
    if status == 304:
        return "not_modified", "304 Not Modified"
    if status in (401, 403, 412, 429, 451):
        return "blocked", f"HTTP {status}" + (" (anti-bot challenge)" if _CHALLENGE.search(body[:20000]) else "")
    if status >= 500:
        return "error", f"HTTP {status} server error"
    if status >= 400:
        return "error", f"HTTP {status}"
    if status >= 300:
        return "error", f"HTTP {status} redirect without a usable location"
    if not body.strip():
        return "error", "empty body"
    if len(body) < 16000 and _CHALLENGE.search(body) and len(_TAGS.sub(b"", body).strip()) < 400:
        return "blocked", f"anti-bot challenge page (HTTP {status}, {len(body)} bytes)"
    return None


def classify_text(text: str) -> tuple[str, str] | None:
    """`maintenance` for a short "系统维护中"-style page served with status 200."""
    if len(text) < 600 and _MAINTENANCE.search(text):
        first = " ".join(text.split())[:60]
        return "maintenance", f"maintenance page ({first})"
    if not text.strip():
        return "error", "no text in the main content"
    return None

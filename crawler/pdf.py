"""A PDF body → its text (pypdf), normalized like HTML text. Chinese CID fonts decode correctly."""

from __future__ import annotations

import io
import logging
import re

from crawler.normalize import Normalized, clean_lines, normalize_line

log = logging.getLogger(__name__)
_PAGE_NUMBER = re.compile(r"^[-—–\s]*(第\s*)?\d+\s*(页|/\s*\d+\s*页?)?[-—–\s]*$")


class PdfUnreadable(Exception):
    """The body is not a PDF pypdf can read."""


def is_pdf(body: bytes) -> bool:
    return body.lstrip()[:5] == b"%PDF-"


def normalize_pdf(body: bytes) -> Normalized:
    """Text of every page, one line per text line; page-number lines dropped; a `[page N]` line
    before each page of a document of several pages."""
    from pypdf import PdfReader  # imported here: most cycles read no PDF, and pypdf takes a tenth of a second to import
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.get("/Title") or "") if reader.metadata else ""
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise PdfUnreadable(f"PDF could not be read: {exc}") from exc
    lines = []
    for number, page in enumerate(pages, start=1):
        if len(pages) > 1:
            lines.append(f"[page {number}]")  # so a fact's evidence can say which page it is on
        lines.extend(line for line in page.splitlines() if not _PAGE_NUMBER.match(line))
    return Normalized(title=normalize_line(title), text=clean_lines(lines), links=(), region="pdf")

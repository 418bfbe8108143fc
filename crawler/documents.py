"""Office attachments → text: .docx and .xlsx read from their XML (zipfile + lxml); legacy binary
.doc/.xls cannot be read without external tools, so they become a line naming their size and hash,
which still changes whenever the file does."""

from __future__ import annotations

import hashlib
import io
import zipfile

from lxml import etree

from crawler.normalize import CELL, Normalized, clean_lines

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


class DocumentUnreadable(Exception):
    """A zip that is neither a .docx nor a .xlsx, or a corrupt one."""


def is_office(body: bytes) -> bool:
    return body[:4] == b"PK\x03\x04" or body[:8] == OLE_MAGIC


def normalize_office(body: bytes, name: str) -> Normalized:
    if body[:8] == OLE_MAGIC:
        digest = hashlib.sha256(body).hexdigest()[:16]
        return Normalized(title=name, text=f"{name}: binary Office document, {len(body)} bytes, sha256 {digest}", links=(), region="ole")
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names:
                return Normalized(title=name, text=clean_lines(_docx_lines(archive)), links=(), region="docx")
            if "xl/workbook.xml" in names:
                return Normalized(title=name, text=clean_lines(_xlsx_lines(archive)), links=(), region="xlsx")
    except (zipfile.BadZipFile, etree.XMLSyntaxError, KeyError) as exc:
        raise DocumentUnreadable(f"office document truncated or damaged: {exc}") from exc
    raise DocumentUnreadable("zip file is neither a .docx nor a .xlsx")


def _docx_lines(archive: zipfile.ZipFile) -> list[str]:
    root = etree.fromstring(archive.read("word/document.xml"))
    lines = []
    for paragraph in root.iter(f"{_W}p"):
        lines.append("".join(t.text or "" for t in paragraph.iter(f"{_W}t")))
    return lines


def _xlsx_lines(archive: zipfile.ZipFile) -> list[str]:
    shared: list[str] = []
    if "xl/sharedStrings.xml" in archive.namelist():
        strings = etree.fromstring(archive.read("xl/sharedStrings.xml"))
        shared = ["".join(t.text or "" for t in si.iter(f"{_S}t")) for si in strings.iter(f"{_S}si")]
    lines = []
    for sheet in sorted(n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")):
        for row in etree.fromstring(archive.read(sheet)).iter(f"{_S}row"):
            cells = []
            for cell in row.iter(f"{_S}c"):
                value = cell.find(f"{_S}v")
                text = value.text if value is not None else "".join(t.text or "" for t in cell.iter(f"{_S}t"))
                cells.append(shared[int(text)] if cell.get("t") == "s" and text and text.isdigit() else (text or ""))
            lines.append(CELL.join(cells))
    return lines

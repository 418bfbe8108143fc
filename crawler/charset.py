"""Bytes → text: the header's charset, then a BOM, then <meta charset>, then UTF-8, then GB18030.

GB2312 and GBK are decoded as GB18030 (a superset), so pages mislabelled GB2312 that use GBK
characters still decode. A page that declares nothing is tried as UTF-8 first, then GB18030.
"""

from __future__ import annotations

import codecs

from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "ascii": "utf-8", "iso-8859-1": "cp1252", "latin-1": "cp1252"}


def _canonical(name: str | None) -> str | None:
    if not name:
        return None
    try:
        name = codecs.lookup(name).name
    except LookupError:
        return None
    return SUPERSETS.get(name, name)


def decode(body: bytes, content_type: str = "", override: str | None = None) -> tuple[str, str]:
    """(text, the encoding used). Never raises: undecodable bytes become U+FFFD."""
    bom_encoding, bom = read_bom(body)
    if bom_encoding:
        return body[len(bom):].decode(bom_encoding, errors="replace"), bom_encoding
    declared = [override, http_content_type_encoding(content_type), html_body_declared_encoding(body)]
    for name in filter(None, map(_canonical, declared)):
        # A header that says ISO-8859-1 on a UTF-8 Chinese page is a common server default: check it.
        if name == "cp1252" and _strict(body, "utf-8") is not None:
            return body.decode("utf-8"), "utf-8"
        return body.decode(name, errors="replace"), name
    for name in ("utf-8", "gb18030"):
        text = _strict(body, name)
        if text is not None:
            return text, name
    return body.decode("utf-8", errors="replace"), "utf-8"


def _strict(body: bytes, name: str) -> str | None:
    try:
        return body.decode(name)
    except UnicodeDecodeError:
        return None

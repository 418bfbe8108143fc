"""Bytes → text, trusting what decodes cleanly rather than what a page declares.

Order: a BOM; the page's forced `encoding`; then, for a body that is not plain ASCII, UTF-8 when
the bytes are valid UTF-8 (non-ASCII bytes that form valid UTF-8 are not GBK by chance); then each
declaration (HTTP header, <meta>) that decodes strictly; then GB18030 (the superset of GB2312 and
GBK); then charset-normalizer's guess. A declaration that does not decode cleanly never wins (a GBK
page whose <meta> says utf-8 is read as GBK, not as mojibake). A header saying ISO-8859-1 is a
common server default and is tried last. Bytes nothing decodes cleanly are `Undecodable`: a failed
fetch, never a garbled snapshot.
"""

from __future__ import annotations

import codecs

from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "ascii": "utf-8",
             "iso-8859-1": "cp1252", "latin-1": "cp1252", "latin_1": "cp1252"}
WEAK = ("cp1252",)  # server defaults, not statements about the document
DETECTABLE = ("big5", "big5hkscs", "cp950", "gb18030", "gbk", "shift_jis", "cp932", "euc_jp", "euc_kr", "cp949", "utf_16", "utf_32")


class Undecodable(Exception):
    """No character set decodes the body cleanly."""


def _canonical(name: str | None) -> str | None:
    if not name:
        return None
    try:
        name = codecs.lookup(name).name
    except LookupError:
        return None
    return SUPERSETS.get(name, name)


def decode(body: bytes, content_type: str = "", override: str | None = None) -> tuple[str, str]:
    """(text, the encoding used). Raises Undecodable when nothing decodes the bytes cleanly."""
    bom_encoding, bom = read_bom(body)
    if bom_encoding and bom:
        return body[len(bom):].decode(bom_encoding, errors="replace"), bom_encoding
    if override:
        name = _canonical(override) or override
        return body.decode(name, errors="replace"), name
    declared = [n for n in (_canonical(http_content_type_encoding(content_type)), _canonical(html_body_declared_encoding(body))) if n]
    if body.isascii():
        return body.decode("ascii"), declared[0] if declared and declared[0] not in WEAK else "utf-8"
    tried = []
    for name in ["utf-8", *[n for n in declared if n not in WEAK], "gb18030"]:
        if name in tried:
            continue
        tried.append(name)
        text = _strict(body, name)
        if text is not None:
            return text, name
    guess = _guess(body)
    if guess is not None:
        return guess
    for name in (n for n in declared if n in WEAK):
        return body.decode(name, errors="replace"), name
    raise Undecodable(f"no character set decodes the body cleanly (tried {', '.join(tried)} and detection; declared: {', '.join(declared) or 'none'})")


def _strict(body: bytes, name: str) -> str | None:
    try:
        text = body.decode(name)
    except (UnicodeDecodeError, LookupError):
        return None
    return None if "\ufffd" in text else text


def _guess(body: bytes) -> tuple[str, str] | None:
    from charset_normalizer import from_bytes

    best = from_bytes(body).best()
    if best is None or best.encoding not in DETECTABLE:  # a single-byte code page decodes anything: no evidence
        return None
    text = _strict(body, best.encoding)
    return (text, best.encoding) if text is not None else None

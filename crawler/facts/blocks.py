"""Facts stated by a block of lines rather than a sentence: required documents, the institution list
(a list, a table, a linked document, or prose "include, among others: A, B and C"), and tables, whose
rows are rewritten as sentences under their header so the row's visa type scopes its values."""

from __future__ import annotations

import re

from crawler.dom import CELL
from crawler.facts.scope import visa_types

_DOCS_HEADING = re.compile(r"(申请材料|所需材料|提交(?:以下|下列)?材料|须提交|需提交|应提交"
                           r"|required documents|documents required|application materials|supporting documents)", re.I)
_ITEM = re.compile(r"^(（[一二三四五六七八九十\d]+）|\(\d+\)|\d+[.、)]|[-•·●]\s*)")
_INSTITUTION = re.compile(r"(大学|学院|研究所|研究院|研究中心|科学院|实验室|University|Institute|College|Academy|Laboratory|School)", re.I)
_LIST_WORD = re.compile(r"名单|名录|list of (?:recognised |recognized )?(?:universities|institutions)", re.I)
_PROSE_LIST = re.compile(r"(?:知名高校|(?:recogni[sz]ed|eligible|renowned|well-known)[^.:]{0,60}(?:universities|institutions))[^:：]{0,60}?"
                         r"(?:包括|有|include|includes|including|are)[^:：]{0,30}?[:：]?\s*(.+)$", re.I)
_SPLIT = re.compile(r"\s*(?:[、，,；;]|\band\b|和|及|以及)\s*")
_TABLE_HEAD = re.compile(r"停留|有效期|入境次数|签证种类|签证类别|stay|validity|entries|visa (?:type|category)|category", re.I)


def documents(lines: list[str], k_flags: list[bool]) -> tuple[str, str] | None:
    for i, line in enumerate(lines):
        if not k_flags[i] or not _DOCS_HEADING.search(line):
            continue
        parts = re.split(r"[：:]", line, maxsplit=1)
        rest = parts[1].strip("。. ") if len(parts) > 1 else ""
        items = ([rest] if rest else []) + _list_after(lines[i + 1:])
        if items:
            return "; ".join(items), line
    return None


def _list_after(lines: list[str]) -> list[str]:
    """The items after a heading: marked lines (（一）, 1., •), or a run of lines ending in ；/; and the line closing it."""
    items: list[str] = []
    open_run = False
    for line in lines:
        if not (_ITEM.match(line) or open_run or line.endswith(("；", ";"))):
            break
        items.append(_ITEM.sub("", line).strip("；;。. "))
        open_run = line.endswith(("；", ";"))
    return items


def institutions(lines: list[str], links: tuple[tuple[str, str], ...], k_flags: list[bool]) -> tuple[str, str] | None:
    for text, url in links:
        if _LIST_WORD.search(text) and re.search(r"高校|大学|院校|科研机构|universit|institution", text, re.I):
            return url, text
    for i, line in enumerate(lines):
        if not k_flags[i]:
            continue
        if m := _PROSE_LIST.search(line):
            names = [_institution_name(n) for n in _SPLIT.split(re.sub(r"(?:among others|等|etc\.?)", "", m.group(1)).strip("。. "))]
            if len([n for n in names if n]) >= 2:
                return "; ".join(sorted({n for n in names if n})), line
        if not (_LIST_WORD.search(line) or "知名高校" in line):
            continue
        names = []
        for following in lines[i + 1:]:
            name = _institution_name(following)
            if name is None:
                break
            names.append(name)
        if len(names) >= 2:
            return "; ".join(sorted({n for n in names if n})), line
    return None


def _institution_name(line: str) -> str | None:
    for cell in (c.strip() for c in line.split(CELL)):
        cell = _ITEM.sub("", cell).strip("；;。.:：,， ")
        if cell and len(cell) <= 60 and _INSTITUTION.search(cell) and not re.search(r"[。，,]", cell):
            return cell
    return None


_TYPE_COLUMN = re.compile(r"签证(?:种类|类别|类型)|种类|类别|visa (?:type|category|class)|type|category", re.I)


def _visa_cell(head: str, cell: str, english: bool) -> str:
    """A bare code in a visa-type column ('K') is named as a visa type ('K字签证' / 'K visa')."""
    code = cell.strip()
    if _TYPE_COLUMN.search(head) and re.fullmatch(r"[A-Z][1-2]?", code):
        return f"{code} visa" if english else f"{code}字签证"
    return cell


def expand_tables(text: str) -> tuple[str, frozenset[int]]:
    """Rewrite table rows under a header row as sentences ('K字签证｜5年' → '签证种类：K字签证，有效期：5年。'),
    and say which lines are such rows (each is its own scope)."""
    out, rows, header = [], set(), None
    for index, line in enumerate(text.splitlines()):
        cells = line.split(CELL)
        if len(cells) >= 2 and not visa_types(line) and sum(bool(_TABLE_HEAD.search(c)) for c in cells) >= 2:
            header = cells
        elif header and len(cells) == len(header):
            ascii_head = all(h.isascii() for h in header)
            colon, comma, stop = (": ", ", ", ".") if ascii_head else ("：", "，", "。")
            cells = [_visa_cell(h, c, ascii_head) for h, c in zip(header, cells)]
            line = comma.join(f"{h}{colon}{c}" for h, c in zip(header, cells)) + stop
            rows.add(index)
        elif len(cells) < 2:
            header = None
        out.append(line)
    return "\n".join(out), frozenset(rows)

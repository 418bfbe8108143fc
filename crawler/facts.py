"""Facts: K-visa details extracted from a page's normalized text, in Chinese and English.

    extract(title, text, links) -> tuple[Fact, ...]

Attribution comes first. Pages list several visa types (Z, X1, R, K…), so text is cut into lines,
sentences (。；;!? and ". ") and clauses (，,), and each clause belongs to the visa type it, or the
nearest clause before it in the same sentence, names; failing that, to the section heading's type;
failing that, to the page's: a page whose title names the K visa, or whose text names only the K
visa, is about the K visa. Only K-attributed clauses yield facts, so "Z字签证…停留不超过30日" never
becomes the K visa's stay.

Numbers: digits (full-width digits are already ASCII after normalization) and Chinese numerals
(一百八十, 两, 二〇二五) are converted span by span with cn2an, never over whole texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import cn2an

from crawler.normalize import CELL

FIELDS = (
    "stay_duration", "validity", "entries", "age_limit", "education", "extension",
    "institution_list", "documents", "family", "fee", "effective_date",
)


@dataclass(frozen=True)
class Fact:
    field: str
    value: str
    evidence: str


@dataclass(frozen=True)
class Clause:
    text: str
    sentence: str
    k: bool


_NUM = r"[0-9]+|[零〇一二两三四五六七八九十百千]+|半"
_UNIT = r"个月|月|日|天|年|周|days?|months?|years?|weeks?"
_ISO_UNIT = {"个月": "M", "月": "M", "日": "D", "天": "D", "年": "Y", "周": "W", "day": "D", "month": "M", "year": "Y", "week": "W"}
_VISA = re.compile(r"(?<![A-Za-z0-9])([A-Z][1-2]?)\s*(?:字\s*签证|字签|签证|[- ]visas?\b|\s+visas?\b)")
_SENTENCE = re.compile(r"(?<=[。；;！？!?])|(?<=\.)\s+(?=[A-Z])")
_CLAUSE = re.compile(r"(?<=[，,])")
_HEADING = re.compile(r"^([一二三四五六七八九十]+、|（[一二三四五六七八九十]+）|\d+[.、]|[A-Z][\w ]{0,40}:$)")


def number(text: str) -> int:
    """'180', '一百八十', '两' → int."""
    if text.isdigit():
        return int(text)
    return int(cn2an.cn2an(text.replace("两", "二").replace("〇", "零"), "smart"))


def duration(num: str, unit: str) -> str:
    """ISO-8601 duration: ('一百八十', '日') → 'P180D'; ('半', '年') → 'P6M'."""
    unit = unit.lower().rstrip("s") if unit.isascii() else unit
    if num == "半":
        return {"Y": "P6M", "M": "P15D", "D": "PT12H"}.get(_ISO_UNIT[unit], "P0D")
    return f"P{number(num)}{_ISO_UNIT[unit]}"


_K_VISA = re.compile(
    r"K\s*字\s*签证|K\s*签证|K字|\bK[- ]?visas?\b|青年科技人才|young (foreign )?(science and technology|scientific and technological|STEM) (talents?|professionals)",
    re.I,
)


def is_relevant(*texts: str) -> bool:
    """Does any of these texts name the K visa? (The keyword test; attribution below is finer.)"""
    return any(_K_VISA.search(t) for t in texts if t)


# --- attribution --------------------------------------------------------------------------------

def visa_types(text: str) -> list[str]:
    return [m.group(1) for m in _VISA.finditer(text)]


def page_is_k(title: str, text: str) -> bool:
    """The page is about the K visa: its title says so, or its text names no other visa type."""
    if "K" in visa_types(title) or re.search(r"K\s*字|K[- ]visa", title, re.I):
        return True
    types = visa_types(text)
    return types.count("K") >= 2 and set(types) == {"K"}


def clauses(title: str, text: str) -> list[Clause]:
    """Every clause of the text with its K-visa attribution."""
    default = page_is_k(title, text)
    out: list[Clause] = []
    section: bool | None = None
    for line in text.splitlines():
        line_types = visa_types(line)
        if line_types and (len(line) <= 40 or line.rstrip().endswith(("：", ":"))) and _HEADING.match(line):
            section = "K" in line_types
        context = default if section is None else section
        for sentence in filter(None, (s.strip() for s in _SENTENCE.split(line))):
            current: bool | None = None
            for part in filter(None, _CLAUSE.split(sentence)):
                types = visa_types(part)
                if types:
                    current = "K" in types and (types[-1] == "K" or len(set(types)) == 1)
                out.append(Clause(part, sentence, context if current is None else current))
    return out


def k_sentences(title: str, text: str) -> list[tuple[str, str]]:
    """(K-attributed text of a sentence, the whole sentence), in order."""
    grouped: dict[str, list[str]] = {}
    for clause in clauses(title, text):
        if clause.k:
            grouped.setdefault(clause.sentence, []).append(clause.text)
    return [("".join(parts), sentence) for sentence, parts in grouped.items()]


def k_lines(title: str, text: str) -> set[str]:
    """The lines of `text` that say something about the K visa (for alert relevance)."""
    sentences = {s for _, s in k_sentences(title, text)}
    return {line for line in text.splitlines() if any(s in line for s in sentences)}


# --- field extractors: (K-attributed text, sentence) → value or None ---------------------------

_STAY_ZH = re.compile(rf"(?:每次)?停留(?:期限?|时间)?\s*(?:为|是|：|:)?\s*(?:不超过|不得超过|最长为?|最多|可达|达|累计不超过)?\s*({_NUM})\s*({_UNIT})(?!前|内)")
_STAY_EN = re.compile(rf"(?:duration of (?:each )?stay|each stay|stays?(?: of| for)?)\s*(?:is|:|：)?\s*(?:up to|no more than|not exceeding|not to exceed|a maximum of|maximum of|of up to)?\s*(\d+)\s*({_UNIT})", re.I)
_VALIDITY_ZH = re.compile(rf"(?<!剩余)(?:入境)?有效期(?:限)?\s*(?:为|是|：|:)?\s*(?:最长为?|不超过|最多|可达)?\s*(?:为)?\s*({_NUM})\s*({_UNIT})")
_VALIDITY_EN = re.compile(rf"(?<!remaining )(?:period of validity|validity period|validity|valid for)\s*(?:\([^)]*\))?\s*(?:is|:|：|of)?\s*(?:up to|of up to|no more than|a maximum of)?\s*(\d+)\s*({_UNIT})", re.I)
_ENTRIES = (
    ("multiple", re.compile(r"多次入境|可多次|多次往返|入境次数\s*[:：]?\s*多次|multiple[- ]entr|entries\s*[:：]\s*multiple", re.I)),
    ("double", re.compile(r"两次入境|二次入境|入境次数\s*[:：]?\s*[两二]次|double[- ]entr|entries\s*[:：]\s*(?:double|two|2)\b", re.I)),
    ("single", re.compile(r"一次入境|单次入境|入境次数\s*[:：]?\s*[一单]次|single[- ]entr|one entry|entries\s*[:：]\s*(?:single|one|1)\b", re.I)),
)
_AGE_RANGE = re.compile(rf"({_NUM})\s*(?:周岁)?\s*(?:至|到|-|—|－|~|～)\s*({_NUM})\s*周岁|aged (?:between )?(\d+) (?:and|to|-) (\d+)", re.I)
_AGE_MAX = re.compile(rf"(?:不超过|不满|未满|不得超过)\s*({_NUM})\s*周岁|({_NUM})\s*周岁(?:以下|以内)|(?:under|below|not older than|no older than|not over)(?: the age of)? (\d+)", re.I)
_AGE_MIN = re.compile(rf"年满\s*({_NUM})\s*周岁|(?:at least|over) (\d+) years? old", re.I)
_EDUCATION = (
    ("doctorate", re.compile(r"博士(?:学位)?|doctoral|ph\.?d", re.I)),
    ("master or above", re.compile(r"硕士(?:学位)?及以上|master'?s degree or (?:above|higher)", re.I)),
    ("bachelor or above", re.compile(r"学士(?:学位)?(?:及|或)以上|本科及以上|bachelor'?s degree or (?:above|higher)", re.I)),
)
_EXTENSION = re.compile(r"延期|延长停留|换发|补发|续签|extension of stay|extend (?:the|their|your) stay|renew", re.I)
_FAMILY = re.compile(r"随行|配偶|子女|家属|family members?|spouse|dependants?|accompanying", re.I)
_FEE = re.compile(r"(?:签证费|收费标准|收费|费用|fees?\b).{0,30}?\d|\d.{0,10}?(?:元|美元|USD|RMB|CNY)", re.I)
_DATE_ZH = re.compile(rf"({_NUM})\s*年\s*({_NUM})\s*月\s*({_NUM})\s*日\s*起?\s*(?:施行|实施|生效|执行|正式实施)")
_DATE_EN = re.compile(r"(?:takes?|took|take) effect (?:on|from) (\w+ \d{1,2},? \d{4}|\d{1,2} \w+ \d{4})|effective (?:from|on|as of) (\w+ \d{1,2},? \d{4}|\d{1,2} \w+ \d{4})", re.I)
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


def _stay(text: str, sentence: str) -> str | None:
    m = _STAY_ZH.search(text) or _STAY_EN.search(text)
    return duration(*m.groups()) if m else None


def _validity(text: str, sentence: str) -> str | None:
    if re.search(r"护照|passport", text, re.I):
        return None
    m = _VALIDITY_ZH.search(text) or _VALIDITY_EN.search(text)
    return duration(*m.groups()) if m else None


def _entries(text: str, sentence: str) -> str | None:
    return next((value for value, pattern in _ENTRIES if pattern.search(text)), None)


def _age(text: str, sentence: str) -> str | None:
    if not re.search(r"年龄|申请人|\bage", sentence, re.I) or re.search(r"子女|children", text, re.I):
        return None
    if m := _AGE_RANGE.search(text):
        low, high = [g for g in m.groups() if g]
        return f"{number(low)}-{number(high)}"
    high = _AGE_MAX.search(text)
    low = _AGE_MIN.search(text)
    if high or low:
        lo = number(next(g for g in low.groups() if g)) if low else ""
        hi = number(next(g for g in high.groups() if g)) if high else ""
        return f"{lo}-{hi}"
    return None


def _education(text: str, sentence: str) -> str | None:
    return next((value for value, pattern in _EDUCATION if pattern.search(text)), None)


def _sentence_if(pattern: re.Pattern[str]) -> Callable[[str, str], str | None]:
    def extract(text: str, sentence: str) -> str | None:
        return sentence if pattern.search(text) else None
    return extract


def _effective_date(text: str, sentence: str) -> str | None:
    if m := _DATE_ZH.search(text):
        year, month, day = (number(g) for g in m.groups())
        return f"{year:04d}-{month:02d}-{day:02d}"
    if m := _DATE_EN.search(text):
        return _english_date(next(g for g in m.groups() if g))
    return None


def _english_date(text: str) -> str | None:
    parts = text.replace(",", "").split()
    words = [p for p in parts if not p.isdigit()]
    digits = [int(p) for p in parts if p.isdigit()]
    month = _MONTHS.get(words[0][:3].lower()) if words else None
    if not month or len(digits) != 2:
        return None
    day, year = sorted(digits)
    return f"{year:04d}-{month:02d}-{day:02d}"


SENTENCE_FIELDS: dict[str, Callable[[str, str], str | None]] = {
    "stay_duration": _stay,
    "validity": _validity,
    "entries": _entries,
    "age_limit": _age,
    "education": _education,
    "extension": _sentence_if(_EXTENSION),
    "family": _sentence_if(_FAMILY),
    "fee": _sentence_if(_FEE),
    "effective_date": _effective_date,
}


# --- block fields: documents and the institution list -------------------------------------------

_ATTACHMENT = re.compile(r"^(附件|附|下载|相关通知|相关链接|相关文件|Attachment|Annex|Download|Related)\s*\d*\s*[:：]", re.I)
_LABEL_PREFIX = re.compile(r"^[^：:。，]{0,12}[：:]\s*")


def _is_label(sentence: str, labels: set[str]) -> bool:
    """An attachment line, the page title, or a line that is only a link's text (after a short 'label：')."""
    core = _LABEL_PREFIX.sub("", sentence).strip("。. ")
    return bool(_ATTACHMENT.match(sentence)) or sentence.strip() in labels or core in labels
_DOCS_HEADING = re.compile(r"(申请材料|所需材料|提交(?:以下|下列)?材料|须提交|需提交|应提交|required documents|documents required|application materials|supporting documents)", re.I)
_ITEM = re.compile(r"^(（[一二三四五六七八九十\d]+）|\(\d+\)|\d+[.、)]|[-•·●]\s*)")
_INSTITUTION = re.compile(r"(大学|学院|研究所|研究院|研究中心|科学院|实验室|University|Institute|College|Academy|Laboratory)", re.I)
_LIST_WORD = re.compile(r"名单|名录|list of (?:recognised |recognized )?(?:universities|institutions)", re.I)


def _documents(lines: list[str], k_flags: list[bool]) -> tuple[str, str] | None:
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


def _institutions(lines: list[str], links: tuple[tuple[str, str], ...], default: bool) -> tuple[str, str] | None:
    for text, url in links:
        if _LIST_WORD.search(text) and re.search(r"高校|大学|院校|科研机构|universit|institution", text, re.I):
            return url, text
    for i, line in enumerate(lines):
        if not (_LIST_WORD.search(line) or "知名高校" in line) or not (default or "K" in visa_types(line)):
            continue
        names = []
        for following in lines[i + 1:]:
            name = _institution_name(following)
            if name is None:
                break
            names.append(name)
        if len(names) >= 2:
            return "; ".join(sorted(set(names))), line
    return None


def _institution_name(line: str) -> str | None:
    cells = [c.strip() for c in line.split(CELL)]
    for cell in cells:
        cell = _ITEM.sub("", cell).strip("；;。. ")
        if cell and len(cell) <= 60 and _INSTITUTION.search(cell) and not re.search(r"[。，,]", cell):
            return cell
    return None


# --- tables: a header row names the columns of the rows below it -------------------------------

_TABLE_HEAD = re.compile(r"停留|有效期|入境次数|签证种类|签证类别|stay|validity|entries|visa (?:type|category)|category", re.I)


def expand_tables(text: str) -> str:
    """Rewrite table rows under a header row as sentences: 'K字签证｜5年' → '签证种类：K字签证，有效期：5年。'"""
    out, header = [], None
    for line in text.splitlines():
        cells = line.split(CELL)
        if len(cells) >= 2 and not visa_types(line) and sum(bool(_TABLE_HEAD.search(c)) for c in cells) >= 2:
            header = cells
        elif header and len(cells) == len(header):
            ascii_head = all(h.isascii() for h in header)
            colon, comma, stop = (": ", ", ", ".") if ascii_head else ("：", "，", "。")
            line = comma.join(f"{h}{colon}{c}" for h, c in zip(header, cells)) + stop
        elif len(cells) < 2:
            header = None
        out.append(line)
    return "\n".join(out)


# --- entry point --------------------------------------------------------------------------------

def extract(title: str, text: str, links: tuple[tuple[str, str], ...] = ()) -> tuple[Fact, ...]:
    """Every K-visa fact the text states, at most one value per field (the first stated)."""
    found: dict[str, Fact] = {}
    text = expand_tables(text)
    labels = {t.strip() for t, _ in links} | {title.strip()}
    for k_text, sentence in k_sentences(title, text):
        if _is_label(sentence, labels):  # a title or a link's label names a document; it states no rule
            continue
        for field, extractor in SENTENCE_FIELDS.items():
            if field in found:
                continue
            value = extractor(k_text, sentence)
            if value:
                found[field] = Fact(field, value, sentence)
    lines = text.splitlines()
    k_set = k_lines(title, text)
    flags = [line in k_set or _section_is_k(lines, i, title, text) for i, line in enumerate(lines)]
    if docs := _documents(lines, flags):
        found["documents"] = Fact("documents", docs[0], docs[1])
    if inst := _institutions(lines, links, page_is_k(title, text)):
        found["institution_list"] = Fact("institution_list", inst[0], inst[1])
    return tuple(found[f] for f in FIELDS if f in found)


def _section_is_k(lines: list[str], index: int, title: str, text: str) -> bool:
    """A line with no visa type of its own belongs to the K visa if the page does and no other type intervenes."""
    if visa_types(lines[index]):
        return "K" in visa_types(lines[index])
    for previous in reversed(lines[:index]):
        if types := visa_types(previous):
            return "K" in types and _HEADING.match(previous) is not None
    return page_is_k(title, text)

"""Facts: K-visa details extracted from a page's normalized text, in Chinese (simplified and
traditional) and English.

    extract(title, text, links, pdf=False) -> tuple[Fact, ...]

- `scope`: which clauses are about the K visa (document structure, then clauses);
- `phrasings`: one extractor per field, the phrasings officials use;
- `blocks`: facts stated by blocks (documents, institution lists) and tables;
- `values`: numbers, durations, dates, traditional→simplified folding.

Evidence is always the page's own sentence (cut from the unfolded text); in a PDF it ends with the
page it is on ("(PDF p. 2)"). A phrase broken across lines in a PDF's text is joined first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crawler.facts.blocks import documents, expand_tables, institutions
from crawler.facts.phrasings import SENTENCE_FIELDS
from crawler.facts.scope import is_relevant, k_lines, k_sentences, page_is_k, visa_types
from crawler.facts.values import fold

__all__ = ["FIELDS", "LIST_FIELDS", "Fact", "extract", "is_relevant", "k_lines", "page_is_k", "visa_types"]

FIELDS = (
    "stay_duration", "validity", "entries", "age_limit", "education", "extension", "institution_list",
    "documents", "family", "fee", "effective_date", "sponsor", "activities", "residence_permit",
)
LIST_FIELDS = ("institution_list", "activities")  # compared as sets of names joined by "; "
LINE_FIELDS = ("residence_permit",)  # "apply within 30 days; processed within 15 working days"
PAGE_MARK = re.compile(r"^\[page (\d+)\]$")


@dataclass(frozen=True)
class Fact:
    field: str
    value: str
    evidence: str


_ATTACHMENT = re.compile(r"^(附件|附|下载|相关通知|相关链接|相关文件|Attachment|Annex|Download|Related)\s*\d*\s*[:：]", re.I)
_LABEL_PREFIX = re.compile(r"^[^：:。，]{0,12}[：:]\s*")
_OPEN_END = re.compile(r"[^。；;！？!?]$")


def _is_label(sentence: str, labels: set[str]) -> bool:
    """An attachment line, the page title, or a line that is only a link's text (after a short 'label：')."""
    core = _LABEL_PREFIX.sub("", sentence).strip("。. ")
    return bool(_ATTACHMENT.match(sentence)) or sentence.strip() in labels or core in labels


def join_wrapped(text: str) -> str:
    """A PDF's lines rejoined where a sentence runs on: a line not ending a sentence continues on the
    next one unless that one starts an item or a heading (page marks are kept on their own line)."""
    out: list[str] = []
    for line in text.splitlines():
        if out and _OPEN_END.search(out[-1]) and not PAGE_MARK.match(line) and not PAGE_MARK.match(out[-1]) \
                and not re.match(r"^(（|\(|\d+[.、)]|[一二三四五六七八九十]+、|第|[-•·●])", line):
            out[-1] += _joint(out[-1], line) + line
        elif out and PAGE_MARK.match(line) and out[-1] and _OPEN_END.search(out[-1]):
            out.append(line)  # a page break inside a sentence: the mark stays, the sentence resumes below
        else:
            out.append(line)
    merged: list[str] = []
    for line in out:  # a sentence cut by a page mark: "…不超过" / [page 2] / "180日。"
        if len(merged) >= 2 and PAGE_MARK.match(merged[-1]) and _OPEN_END.search(merged[-2]):
            mark = merged.pop()
            merged[-1] += _joint(merged[-1], line) + line
            merged.append(mark)
            continue
        merged.append(line)
    return "\n".join(merged)


def _joint(before: str, after: str) -> str:
    """What goes between two parts of a wrapped line: a space between words, nothing in CJK or inside a number."""
    a, b = before[-1:], after[:1]
    return " " if a.isascii() and b.isascii() and not (a.isdigit() and b.isdigit()) else ""


def extract(title: str, text: str, links: tuple[tuple[str, str], ...] = (), pdf: bool = False) -> tuple[Fact, ...]:
    """Every K-visa fact the text states, at most one value per field (the first stated). A PDF's
    wrapped lines are rejoined first; fields found only with its lines as extracted (a list under a
    heading) are added from a second pass."""
    found = {fact.field: fact for fact in _extract(title, join_wrapped(text) if pdf else text, links, pdf)}
    if pdf:
        for fact in _extract(title, text, links, pdf):
            found.setdefault(fact.field, fact)
    return tuple(found[f] for f in FIELDS if f in found)


def _extract(title: str, text: str, links: tuple[tuple[str, str], ...], pdf: bool) -> tuple[Fact, ...]:
    original = text
    folded, rows = expand_tables(fold(text))
    title = fold(title)
    found: dict[str, Fact] = {}
    labels = {fold(t).strip() for t, _ in links} | {title.strip()}
    by_line: dict[int, list[str]] = {}
    all_lines = folded.splitlines()
    for index, k_text, sentence in k_sentences(title, folded, rows):
        if _is_label(sentence, labels):  # a title or a link's label names a document; it states no rule
            continue
        by_line.setdefault(index, []).append(k_text)
        for field, extractor in SENTENCE_FIELDS.items():
            if field in found or field in LINE_FIELDS:
                continue
            value = extractor(k_text, sentence)
            if value:
                found[field] = Fact(field, _unfold(value, folded, original), _evidence(sentence, folded, original, pdf))
    for index, parts in by_line.items():  # fields whose parts a line may state in separate sentences
        line = all_lines[index]
        for field in LINE_FIELDS:
            if field not in found and (value := SENTENCE_FIELDS[field]("".join(parts), line)):
                found[field] = Fact(field, _unfold(value, folded, original), _evidence(line, folded, original, pdf))
    lines = folded.splitlines()
    k_set = k_lines(title, folded)
    flags = [line in k_set or _section_is_k(lines, i, title, folded) for i, line in enumerate(lines)]
    if docs := documents(lines, flags):
        found["documents"] = Fact("documents", _unfold(docs[0], folded, original), _evidence(docs[1], folded, original, pdf))
    if inst := institutions(lines, links, flags if not page_is_k(title, folded) else [True] * len(lines)):
        found["institution_list"] = Fact("institution_list", _unfold(inst[0], folded, original), _evidence(inst[1], folded, original, pdf))
    return tuple(found[f] for f in FIELDS if f in found)


def _unfold(value: str, folded: str, original: str) -> str:
    """A sentence-valued fact in the page's own script (values that are codes stay as they are)."""
    at = folded.find(value) if len(value) > 8 else -1
    return original[at:at + len(value)] if at >= 0 and len(folded) == len(original) else value


def _evidence(sentence: str, folded: str, original: str, pdf: bool) -> str:
    at = folded.find(sentence)
    exact = original[at:at + len(sentence)] if at >= 0 and len(folded) == len(original) else sentence
    if not pdf or at < 0:
        return exact
    pages = [int(m.group(1)) for m in re.finditer(r"^\[page (\d+)\]$", folded[:at], re.M)]
    return f"{exact} (PDF p. {pages[-1] if pages else 1})"


def _section_is_k(lines: list[str], index: int, title: str, text: str) -> bool:
    """A line with no visa type of its own belongs to the K visa if the page does and no other type intervenes."""
    if visa_types(lines[index]):
        return "K" in visa_types(lines[index])
    for previous in reversed(lines[:index]):
        if types := visa_types(previous):
            return types[0] == "K"
    return page_is_k(title, text)

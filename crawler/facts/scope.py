"""Attribution: which parts of a text are about the K visa.

Scope follows the document's structure, not only the sentence. A line (paragraph, list item,
heading, Q&A question) that opens with a visa type scopes everything after it until another line
opens with another type; a Q&A answer inherits its question's scope; label–value runs
("入境次数：多次；有效期：5年") inherit the scope they sit in. Inside a line, a clause that names
another type (Z, R, X1, the 240-hour transit policy) switches the scope for the rest of the line. A
table row, rewritten as a sentence under its header, is its own scope and scopes nothing after it.
A page whose title names the K visa, or whose text names only the K visa, starts in K scope.

Another type's values are never the K visa's: a clause naming two types where the last is not K
is not K, and a line scoped to another type stays so until K is named again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_VISA = re.compile(
    r"(?<![A-Za-z0-9])([A-Z][1-2]?)\s*(?:字\s*签证|字签|类签证|签证|[- ](?i:visas?)\b|\s+(?i:visas?)\b)"
    r"|(?:visa|category)\s+([A-Z][1-2]?)\b(?![a-z])"
    r"|((?:240|144|72)\s*(?:小时|-hour|hours?)\s*(?:过境免签|visa-free transit|transit)|过境免签|免签入境|visa-free (?:entry|transit))",
)
_K_WORDS = re.compile(
    r"K\s*字\s*签证|K\s*签证|K字|\bK[- ]?visas?\b|\bvisa K\b|青年科技人才|young (foreign )?(science and technology|scientific and technological|STEM) (talents?|professionals)",
    re.I,
)
# Literal words without one of which neither pattern can match (lower case; checked with `in`, far
# cheaper than the patterns): most clauses name no type. tests/test_phrasings.py runs every phrasing
# through both paths.
TYPE_WORDS = ("签", "visa", "category", "小时", "hour", "k字", "青年科技人才", "young")
_SENTENCE = re.compile(r"(?<=[。；;！？!?])|(?<=\.)\s+(?=[A-Z(（])")
_CLAUSE = re.compile(r"(?<=[，,])")
_MARKER = re.compile(r"^\s*(?:[一二三四五六七八九十]+[、.．]|（[一二三四五六七八九十\d]+）|\(\d+\)|\d+[.、)．]\s*|[-•·●]\s*|第[一二三四五六七八九十]+[条章]\s*)")
_QA = re.compile(r"^\s*(问|答|Q|A)\s*[\d.]*\s*[:：.]", re.I)
OPENER_SPAN = 14  # a type named this close to a line's start (after its list marker) opens a scope


@dataclass(frozen=True)
class Clause:
    text: str
    sentence: str
    k: bool
    line: int = 0


def _typed(text: str) -> list[tuple[int, str]]:
    """(position, visa type) of every type the text names, in order."""
    lower = text.lower()
    if not any(word in lower for word in TYPE_WORDS):
        return []
    found = {m.start(): m.group(1) or m.group(2) or "TRANSIT" for m in _VISA.finditer(text)}
    named_k = {at for at, kind in found.items() if kind == "K"}
    for m in _K_WORDS.finditer(text):
        if not any(at in named_k for at in range(m.start() - 2, m.start() + 3)):
            found[m.start()] = "K"
    return sorted(found.items())


def visa_types(text: str) -> list[str]:
    return [kind for _, kind in _typed(text)]


def is_relevant(*texts: str) -> bool:
    """Does any of these texts name the K visa? (The keyword test; attribution is finer.)"""
    return any(_K_WORDS.search(t) for t in texts if t)


@lru_cache(maxsize=64)
def page_is_k(title: str, text: str) -> bool:
    """The page is about the K visa: its title says so, or its text names no other visa type."""
    if "K" in visa_types(title):
        return True
    types = visa_types(text)
    return types.count("K") >= 2 and set(types) == {"K"}


def _opener(line: str) -> str | None:
    """The visa type a line opens with, if any: '三、K字签证（…）：…', 'K Visa: …', '问：K字签证…'."""
    question = bool(_QA.match(line)) and line.strip()[:1] in "问Qq"
    rest = _QA.sub("", _MARKER.sub("", line), count=1)
    first = _first_type(rest)
    if first is None:
        return None
    kind, position = first
    return kind if position <= OPENER_SPAN or question else None  # a question scopes its answer wherever it names the type


def _first_type(text: str) -> tuple[str, int] | None:
    typed = _typed(text)
    return (typed[0][1], typed[0][0]) if typed else None


@lru_cache(maxsize=16)  # extraction asks for the same text's clauses more than once
def clauses(title: str, text: str, row_lines: frozenset[int] = frozenset()) -> tuple[Clause, ...]:
    """Every clause of the text with its K-visa attribution."""
    scope = page_is_k(title, text)
    out: list[Clause] = []
    for index, line in enumerate(text.splitlines()):
        opened = _opener(line)
        current = scope if opened is None else opened == "K"
        if opened is not None and index not in row_lines:
            scope = current  # a line that opens with a type scopes what follows it
        for sentence in filter(None, (s.strip() for s in _SENTENCE.split(line))):
            for part in filter(None, _CLAUSE.split(sentence)):
                types = visa_types(part)
                if types:  # a clause naming a type switches the rest of its line
                    current = "K" in types and (types[-1] == "K" or len(set(types)) == 1)
                out.append(Clause(part, sentence, current, index))
    return tuple(out)


def k_sentences(title: str, text: str, row_lines: frozenset[int] = frozenset()) -> list[tuple[int, str, str]]:
    """(line index, K-attributed text of a sentence, the whole sentence), in order."""
    grouped: dict[tuple[int, str], list[str]] = {}
    for clause in clauses(title, text, row_lines):
        if clause.k:
            grouped.setdefault((clause.line, clause.sentence), []).append(clause.text)
    return [(line, "".join(parts), sentence) for (line, sentence), parts in grouped.items()]


def k_lines(title: str, text: str) -> set[str]:
    """The lines of `text` that say something about the K visa (for alert relevance)."""
    sentences = {s for _, _, s in k_sentences(title, text)}
    return {line for line in text.splitlines() if any(s in line for s in sentences)}

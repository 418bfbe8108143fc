"""Diffs of two normalized texts: `diff(a, b) -> Diff`.

diff-match-patch over tokens, not characters or whitespace-separated words: every CJK character is a
token, a run of Latin letters or of digits is one token ("180" vs "90", "visa" vs "visas"), and so
is every other character. Tokens are mapped to private code points, diffed, and mapped back, so a
whole Chinese sentence never diffs as one token and an English word never splits into letters.

The compiled fast-diff-match-patch is used with no time limit (the pure-Python library's default
1-second limit silently returns coarse diffs on large texts); the pure library, with
`Diff_Timeout = 0`, is the fallback where the compiled wheel is unavailable.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

try:
    import fast_diff_match_patch as _fast
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    _fast = None

EQUAL, DELETE, INSERT = "=", "-", "+"
_TOKEN = re.compile(r"[A-Za-z]+|[0-9]+(?:\.[0-9]+)?|\s+|.", re.S)
_BASE = 0x10000  # tokens become astral-plane code points; whitespace stays itself


@dataclass(frozen=True)
class Diff:
    """A diff as a sequence of (op, text) with op in '=', '-', '+'."""

    ops: tuple[tuple[str, str], ...]

    @property
    def changed(self) -> bool:
        return any(op != EQUAL for op, _ in self.ops)

    def spans(self, context: int = 30) -> list[dict[str, Any]]:
        """Inserted and deleted spans, each with up to `context` characters of its own side's text around it."""
        out = []
        for i, (op, text) in enumerate(self.ops):
            if op == EQUAL:
                continue
            other = INSERT if op == DELETE else DELETE  # a deletion's context is the old text, an insertion's the new
            before = "".join(t for o, t in self.ops[:i] if o != other)[-context:]
            after = "".join(t for o, t in self.ops[i + 1:] if o != other)[:context]
            out.append({"op": "insert" if op == INSERT else "delete", "text": text, "before": before, "after": after})
        return out

    def excerpt(self, context: int = 30, limit: int = 1500) -> str:
        """A short wdiff-style excerpt: unchanged context, [-deleted-] and {+inserted+}."""
        parts: list[str] = []
        for i, (op, text) in enumerate(self.ops):
            if op == DELETE:
                parts.append(f"[-{text}-]")
            elif op == INSERT:
                parts.append(f"{{+{text}+}}")
            else:
                parts.append(_context(text, context, first=i == 0, last=i == len(self.ops) - 1))
        joined = "".join(parts)
        return joined if len(joined) <= limit else joined[: limit - 1] + "…"

    def render_text(self, color: bool = False) -> str:
        """The whole new text with changes marked (ANSI colours, or wdiff markers)."""
        marks = {DELETE: ("\x1b[31;9m", "\x1b[0m"), INSERT: ("\x1b[32;1m", "\x1b[0m")} if color else {DELETE: ("[-", "-]"), INSERT: ("{+", "+}")}
        return "".join(text if op == EQUAL else marks[op][0] + text + marks[op][1] for op, text in self.ops)

    def render_html(self) -> str:
        """The whole new text with <del>/<ins>; every piece of page text is escaped."""
        tags = {DELETE: "del", INSERT: "ins"}
        body = "".join(
            html.escape(text) if op == EQUAL else f"<{tags[op]}>{html.escape(text)}</{tags[op]}>" for op, text in self.ops
        )
        return f'<pre class="kvwatch-diff">{body}</pre>'


def _context(text: str, width: int, first: bool, last: bool) -> str:
    """An unchanged run shortened to `width` characters next to each change it touches."""
    if first and last:
        return ""
    if first:
        return text if len(text) <= width else "…" + text[-width:]
    if last:
        return text if len(text) <= width else text[:width] + "…"
    return text if len(text) <= 2 * width + 3 else text[:width] + " … " + text[-width:]


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


BLOCK_CAP = 10_000_000   # characters(a) × characters(b) of one changed block diffed token by token (≈ 70 ms at worst)
TOTAL_CAP = 100_000_000  # the same, summed over a whole diff; blocks beyond it are reported as replaced whole
PAIRED_LINES_CAP = 5_000  # a larger block, every line changed, is a rewrite: reported as replaced whole


def diff(a: str, b: str) -> Diff:
    """Lines first, then tokens inside each changed block of lines, with no time limit: the result
    depends only on the texts. A block too large for token-level work (see BLOCK_CAP, TOTAL_CAP) is
    reported as replaced whole, so a full rewrite of a 2 MB page costs a line diff, not minutes."""
    lines_a, lines_b = a.splitlines(keepends=True), b.splitlines(keepends=True)
    vocab: dict[str, str] = {}
    codes = lambda lines: "".join(vocab.setdefault(line, chr(_BASE + len(vocab))) for line in lines)  # noqa: E731
    line_ops = _raw_diff(codes(lines_a), codes(lines_b), cleanup="No")
    text_of = {code: line for line, code in vocab.items()}
    ops: list[tuple[str, str]] = []
    block: dict[str, list[str]] = {DELETE: [], INSERT: []}
    spent = 0

    def affordable(old: str, new: str) -> bool:
        nonlocal spent
        work = len(old) * len(new)
        if work > BLOCK_CAP or spent + work > TOTAL_CAP:
            return False
        spent += work
        return True

    def flush() -> None:
        old, new = "".join(block[DELETE]), "".join(block[INSERT])
        if old and new and affordable(old, new):
            ops.extend(_token_diff(old, new))
        elif old and new and len(block[DELETE]) == len(block[INSERT]) <= PAIRED_LINES_CAP:  # lines edited in place: one by one
            for line_a, line_b in zip(block[DELETE], block[INSERT]):
                ops.extend(_token_diff(line_a, line_b) if affordable(line_a, line_b) else [(DELETE, line_a), (INSERT, line_b)])
        else:
            ops.extend(op for op in ((DELETE, old), (INSERT, new)) if op[1])
        block[DELETE], block[INSERT] = [], []

    for op, run in line_ops:
        lines = [text_of[c] for c in run]
        if op == EQUAL:
            flush()
            ops.append((EQUAL, "".join(lines)))
        else:
            block[op].extend(lines)
    flush()
    return Diff(_merge(tuple(op for op in ops if op[1])))


def _token_diff(a: str, b: str) -> list[tuple[str, str]]:
    """Token-level diff of `a` → `b`, with semantic cleanup and no time limit."""
    vocab: dict[str, str] = {}
    tokens: list[str] = []

    def encode(text: str) -> str:
        out = []
        for tok in tokenize(text):
            if tok.isspace():  # kept literal, so semantic cleanup can still align edits to line breaks
                out.append(tok)
                continue
            code = vocab.get(tok)
            if code is None:
                code = vocab[tok] = chr(_BASE + len(tokens))
                tokens.append(tok)
            out.append(code)
        return "".join(out)

    raw = _raw_diff(encode(a), encode(b))
    return [(op, "".join(tokens[ord(c) - _BASE] if ord(c) >= _BASE else c for c in text)) for op, text in raw if text]


def _raw_diff(a: str, b: str, cleanup: str = "Semantic") -> list[tuple[str, str]]:
    if _fast is not None:
        return list(_fast.diff(a, b, timelimit=0, checklines=False, cleanup=cleanup, counts_only=False))
    import diff_match_patch

    dmp = diff_match_patch.diff_match_patch()
    dmp.Diff_Timeout = 0
    diffs = dmp.diff_main(a, b, False)
    if cleanup == "Semantic":
        dmp.diff_cleanupSemantic(diffs)
    return [({0: EQUAL, -1: DELETE, 1: INSERT}[op], text) for op, text in diffs]


def _merge(ops: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    merged: list[tuple[str, str]] = []
    for op, text in ops:
        if merged and merged[-1][0] == op:
            merged[-1] = (op, merged[-1][1] + text)
        else:
            merged.append((op, text))
    return tuple(merged)


def line_changes(a: str, b: str) -> tuple[list[str], list[str]]:
    """(lines of `b` not in `a`, lines of `a` not in `b`) as multisets, in document order: of two
    identical lines in `a` and one in `b`, the second is reported as deleted."""
    return _surplus(b.splitlines(), Counter(a.splitlines())), _surplus(a.splitlines(), Counter(b.splitlines()))


def _surplus(lines: list[str], other: Counter[str]) -> list[str]:
    """The occurrences in `lines` beyond the count `other` has, later occurrences first to go."""
    left = Counter(lines)
    for line, n in other.items():
        left[line] -= n
    out = []
    for line in reversed(lines):
        if left[line] > 0:
            out.append(line)
            left[line] -= 1
    return out[::-1]

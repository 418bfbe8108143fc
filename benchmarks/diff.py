"""Diff benchmark: two versions of a 50 KB and a 500 KB Chinese text with 1% of characters edited,
and full rewrites of 100 KB, 500 KB and 2 MB (the bound that keeps analysis from stalling).

    python benchmarks/diff.py

Prints seconds per diff for kvwatch's `store.diff.diff` (token level, compiled diff-match-patch, no
time limit) and, for comparison, the pure-Python diff-match-patch at character level with no time
limit and with its default 1-second limit (which silently returns a coarser diff).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from functools import partial

import diff_match_patch

from store.diff import diff

SENTENCE = "外国青年科技人才申请K字签证，应当提交学历学位证明、护照和签证申请表，每次停留不超过180日。"


def make_text(size_bytes: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    size = 0
    while size < size_bytes:
        line = f"第{len(lines) + 1}条：" + "".join(rng.sample(SENTENCE, len(SENTENCE)))
        lines.append(line)
        size += len(line.encode()) + 1
    return "\n".join(lines)


def edit(text: str, fraction: float, seed: int = 11) -> str:
    rng = random.Random(seed)
    chars = list(text)
    for i in rng.sample(range(len(chars)), int(len(chars) * fraction)):
        if chars[i] != "\n":
            chars[i] = rng.choice("零一二三四五六七八九十日年次")
    return "".join(chars)


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pure(a: str, b: str, timeout: float) -> int:
    dmp = diff_match_patch.diff_match_patch()
    dmp.Diff_Timeout = timeout
    diffs = dmp.diff_main(a, b)
    dmp.diff_cleanupSemantic(diffs)
    return dmp.diff_levenshtein(diffs)


def main() -> None:
    print(f"{'input':34} {'kvwatch diff s':>14} {'pure, no limit s':>16} {'pure, 1 s limit s':>17} {'levenshtein (no limit / 1 s)':>30}")
    for label, size, fraction in (("50 KB, 1% edits", 50_000, 0.01), ("500 KB, 1% edits", 500_000, 0.01), ("500 KB, 10% edits", 500_000, 0.10)):
        a = make_text(size)
        b = edit(a, fraction)
        ours = timed(partial(diff, a, b), 5)
        exact = pure(a, b, 0) if size <= 500_000 and fraction <= 0.01 else None
        slow = timed(partial(pure, a, b, 0), 1) if exact is not None else float("nan")
        limited = timed(partial(pure, a, b, 1.0), 1)
        lev_limited = pure(a, b, 1.0)
        lev = f"{exact if exact is not None else '-'} / {lev_limited}"
        print(f"{label + ' (' + str(len(a)) + ' chars)':34} {ours:14.4f} {slow:16.3f} {limited:17.3f} {lev:>30}")
    print("\nfull rewrites (every line different; lines first, tokens inside blocks up to the caps):")
    for label, size in (("100 KB", 100_000), ("500 KB", 500_000), ("2 MB", 2_000_000)):
        a, b = make_text(size, seed=1), make_text(size, seed=2)
        print(f"{label:34} {timed(partial(diff, a, b), 3):14.4f} s")


if __name__ == "__main__":
    main()

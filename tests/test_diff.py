"""Diffs at token level, and what counts as a change (flip-flops, links, ignore patterns)."""

from __future__ import annotations

import json

from crawler.analyse import Version, comparable, compare
from store.diff import diff, tokenize


def test_chinese_diffs_at_character_level_and_numbers_stay_whole() -> None:
    d = diff("K字签证停留期180日，可多次入境。", "K字签证停留期90日，可一次入境。")
    assert [(op, t) for op, t in d.ops if op != "="] == [("-", "180"), ("+", "90"), ("-", "多"), ("+", "一")]


def test_latin_text_diffs_by_word_not_by_letter() -> None:
    d = diff("Number of entries: multiple entries.", "Number of entries: single entries.")
    assert [(op, t) for op, t in d.ops if op != "="] == [("-", "multiple"), ("+", "single")]
    assert tokenize("K visa 180天") == ["K", " ", "visa", " ", "180", "天"]


def test_html_rendering_escapes_page_text() -> None:
    import html
    import re

    new = "<script>alert(1)</script> [link](http://x) <@channel>"
    rendered = diff("<b>safe</b>", new).render_html()
    assert "<script" not in rendered and "<@" not in rendered
    new_side = re.sub(r"<del>.*?</del>|</?(ins|pre)[^>]*>", "", rendered)
    assert html.unescape(new_side) == new


def test_spans_have_context_from_their_own_side() -> None:
    spans = diff("停留期180日", "停留期90日").spans(context=3)
    assert spans == [
        {"op": "delete", "text": "180", "before": "停留期", "after": "日"},
        {"op": "insert", "text": "90", "before": "停留期", "after": "日"},
    ]
    json.dumps(spans, ensure_ascii=False)


def test_large_edits_are_exact_without_a_time_limit() -> None:
    a = "".join(f"第{i}条：K字签证停留期{i}日。\n" for i in range(3000))
    b = a.replace("停留期1500日", "停留期1501日").replace("第10条", "第十条")
    d = diff(a, b)
    assert [(op, t) for op, t in d.ops if op != "="] == [("-", "10"), ("+", "十"), ("-", "1500"), ("+", "1501")]


def _v(text: str, links: tuple[tuple[str, str], ...] = ()) -> Version:
    return Version(comparable(text), links)


def test_a_b_a_flip_flop_alerts_once() -> None:
    a, b = _v("政策正文\n轮播：通知甲"), _v("政策正文\n轮播：通知乙")
    assert compare(a, b, [a]).substantive  # first sighting of B
    assert not compare(b, a, [b, a]).substantive  # back to A
    assert not compare(a, b, [a, b, a]).substantive  # B again


def test_a_stable_sentence_removed_alerts() -> None:
    a, b = _v("停留期180日\n需提交护照"), _v("停留期180日")
    change = compare(a, b, [a, a])
    assert change.removed_lines == ("需提交护照",)


def test_new_links_are_listed_and_old_ones_are_not_new() -> None:
    old = _v("列表", (("旧通知", "http://x/1"),))
    new = _v("列表", (("新通知", "http://x/2"), ("旧通知", "http://x/1")))
    assert compare(old, new, [old]).new_links == (("新通知", "http://x/2"),)


def test_page_ignore_patterns_apply_to_both_sides() -> None:
    a = Version(comparable("访问人数 1200 人\n停留期180日", (r"访问人数 \d+ 人",)), ())
    b = Version(comparable("访问人数 1300 人\n停留期180日", (r"访问人数 \d+ 人",)), ())
    assert not compare(a, b, [a]).substantive
    c = Version(comparable("访问人数 1300 人\n停留期90日", (r"访问人数 \d+ 人",)), ())
    assert compare(a, c, [a]).new_lines == ("停留期90日",)


def test_a_full_rewrite_of_a_huge_text_is_a_bounded_line_diff_not_a_character_search() -> None:
    from store.diff import PAIRED_LINES_CAP

    lines = PAIRED_LINES_CAP + 10
    a = "\n".join(f"第{i}条：K字签证每次停留不超过{i}日。" for i in range(lines))
    b = "\n".join(f"第{i}款：Z字签证有效期为{i}年。" for i in range(lines))
    d = diff(a + "\n共同结尾。", b + "\n共同结尾。")
    assert d.ops == (("-", a + "\n"), ("+", b + "\n"), ("=", "共同结尾。"))  # replaced whole, the shared line kept
    small = diff("一\n停留期90日。\n二", "一\n停留期180日。\n二")
    assert [(op, t) for op, t in small.ops if op != "="] == [("-", "90"), ("+", "180")]  # small blocks stay token-exact

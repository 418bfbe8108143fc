"""Volatile text that is not content: counters, "today is" dates, publish timestamps, widget labels.

Applied line by line after the chrome is removed by markup. Never drops numbers wholesale: every
pattern names the label the number belongs to ("浏览次数：123"), so "停留期180日" is never touched.
"""

from __future__ import annotations

import re

_DATE = r"\d{4}\s*[-年/.]\s*\d{1,2}\s*[-月/.]\s*\d{1,2}\s*日?"
_TIME = r"(\s*\d{1,2}:\d{2}(:\d{2})?)?"
_WEEKDAY = r"(\s*(星期|周|礼拜)[一二三四五六日天])?"

# Spans removed from a line (the rest of the line stays).
VOLATILE_SPANS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        rf"今天是\s*[:：]?\s*{_DATE}{_WEEKDAY}",
        rf"(发布|更新|修改|发表|录入)(时间|日期)\s*[:：]\s*{_DATE}{_TIME}",
        r"(浏览|阅读|点击|访问|查看)(次数|人次|量|数)\s*[:：]?\s*[(（\[【]?\s*[\d,]*\s*[)）\]】]?\s*次?",
        r"(?i)\b(number of views|page views|views|hits|visits|reads|visitors)\s*[:：]?\s*[(（\[]?\s*[\d,]+\s*[)）\]]?",
        rf"(页面生成时间|生成时间|最后更新|最后修改)\s*[:：]?\s*{_DATE}{_TIME}",
        r"【?\s*字[体號号]\s*[:：]\s*[大中小\s]+】?",
        r"【\s*(打印|关闭|打印本页|关闭窗口)\s*】",
        r"(Updated|Published|Release time|Date)\s*[:：]\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?",
    )
)

# Whole lines dropped: widget labels, pagers, footers.
VOLATILE_LINES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^(上一篇|下一篇|上一条|下一条|Previous|Next)\s*[:：]",
        r"^(分享到|Share to|Share)\s*[:：]?",
        r"^(打印|关闭|打印本页|关闭窗口|返回顶部|Print|Close)(\s*[|｜/]?\s*(打印|关闭|打印本页|关闭窗口|返回顶部|Print|Close))*$",
        r"(ICP备|ICP证|网站标识码|公网安备|版权所有|Copyright|All rights reserved|©)",
        r"^(扫一扫|微信扫一扫|手机扫码)",
        r"^【?\s*$",
    )
)


# Literal words without one of which no pattern above can match (checked with `in`, far cheaper than
# running the patterns on every line; tests/test_normalize.py checks every pattern's examples pass
# these gates). Lower case: the text is lowered first.
LINE_WORDS = ("icp", "网站标识码", "公网安备", "版权所有", "copyright", "all rights reserved", "©")
LINE_STARTS = ("上一", "下一", "previous", "next", "分享", "share", "打印", "关闭", "返回顶部", "print", "close", "扫一扫", "微信扫一扫", "手机扫码")
SPAN_WORDS = ("今天是", "时间", "日期", "浏览", "阅读", "点击", "访问", "查看", "最后更新", "最后修改", "字体", "字號", "字号", "【",
              "view", "hits", "visit", "reads", "updated", "published", "release", "date")


def clean_line(line: str) -> str:
    """A line with its volatile spans removed; '' if the whole line is chrome."""
    lower = line.lower()
    if line.strip() in ("", "【") or lower.lstrip().startswith(LINE_STARTS) or any(word in lower for word in LINE_WORDS):
        for pattern in VOLATILE_LINES:
            if pattern.search(line):
                return ""
    if any(word in lower for word in SPAN_WORDS):
        for pattern in VOLATILE_SPANS:
            line = pattern.sub("", line)
    return line.strip(" |")


def apply_ignores(text: str, patterns: tuple[str, ...]) -> str:
    """The page's own `ignore` regular expressions, removed from `text` (for hashing and comparing)."""
    for pattern in patterns:
        text = re.sub(pattern, "", text, flags=re.MULTILINE)
    return text

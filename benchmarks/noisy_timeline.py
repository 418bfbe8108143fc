"""A timeline of noisy government pages, scored like a hold-out: every HTML fixture polled 12 times on a
loopback URL and on its real site's host name, with chrome noise on every tick (a counter, a date header,
a rotating "热点推荐" related list inside the article, a script token), template re-renders on three ticks
(tests/variants.py, chosen at random), and K-visa edits on three (two added sentences, one number
changed in the main text). Prints false alerts, edits caught, and number edits that changed a fact.

    .venv/bin/python benchmarks/noisy_timeline.py [--seed N]
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.analyse import Version, comparable, compare  # noqa: E402
from crawler.charset import decode  # noqa: E402
from crawler.facts import extract  # noqa: E402
from crawler.fetch import read_body  # noqa: E402
from crawler.normalize import Anchor, Normalized  # noqa: E402
from crawler.watchlist import PageSpec  # noqa: E402
from tests.variants import TRANSFORMS, edited, variants  # noqa: E402

PAGES = sorted(p for p in (ROOT / "fixtures" / "pages").glob("*.html") if p.stem not in ("challenge-412", "maintenance"))
HOSTS = {"gov": "https://www.gov.cn/zhengce/content/202610/content_1.htm", "nia": "https://www.nia.gov.cn/n741440/n741547/c1/content.html",
         "embassy": "https://us.china-embassy.gov.cn/eng/lsfw/zj/t1.htm", "consulate": "https://chicago.china-consulate.gov.cn/chn/t1.htm",
         "mission": "https://my.china-embassy.gov.cn/fwzc/t1.htm", "visa": "https://www.visaforchina.cn/SYD3_EN/tongzhigonggao/1.html",
         "blog": "https://blog.example.com/x.html"}
NUMBER_EDITS = (("180", "90"), ("一百八十", "九十"), ("五年", "三年"), ("5 years", "3 years"), ("45", "40"))


def noisy(body: bytes, rng: random.Random) -> bytes:
    text, encoding = decode(body, "text/html")
    n = rng.randint(1000, 99999)
    text = re.sub(r"(浏览次数|阅读次数|点击数)[:：]\s*\d+", lambda m: f"{m.group(1)}：{n}", text)
    text = re.sub(r"今天是\s*\d{4}年\d{1,2}月\d{1,2}日", f"今天是2026年11月{rng.randint(1, 28)}日", text)
    related = "".join(f'<li><a href="/n/{n + i}.htm">热点新闻标题第{n + i}号：某地开展活动</a></li>' for i in range(3))
    extra = f'<div class="sidebar-box"><h3>热点推荐</h3><ul>{related}</ul></div><script>var token="{n:x}";</script>'
    at = text.rfind("</p>")
    text = text[:at + 4] + extra + text[at + 4:] if at > 0 else text.replace("</body>", extra + "</body>")
    return text.encode(encoding, errors="replace")


def version(page: Normalized) -> Version:
    return Version(comparable(page.text), tuple((link.text, link.url) for link in page.links))


def run(mode: str, rng: random.Random) -> tuple[int, int, int, int, int, int]:
    ticks = false = caught = missed = fact_edits = fact_changed = 0
    for path in PAGES:
        url = f"http://127.0.0.1:8000/{path.name}" if mode == "loopback" else HOSTS[path.stem.split("-")[0]]
        spec = PageSpec(id=path.stem, url=url, kind="listing" if path.stem.endswith("-news") else "auto")
        first = read_body(spec, url, path.read_bytes(), "text/html")[0]
        body_text = first.text.split("\n", 1)[-1]
        anchor, previous = Anchor(first.title, first.text, first.region), version(first)
        history, current = [previous], path.read_bytes()
        for tick in range(12):
            ticks += 1
            edit, number = tick in (4, 7, 9), tick == 7
            facts_before = {f.field: f.value for f in extract(anchor.title, anchor.text)}
            if number:
                text, encoding = decode(current, "text/html")
                old, new = next(((a, b) for a, b in NUMBER_EDITS if a in body_text and a in text), (None, None))
                edit = old is not None
                if old is not None and new is not None:
                    current = text.replace(old, new).encode(encoding)
            elif edit:
                current = edited(current, body_text, f"K字签证新增规定第{tick}条。")
            body = noisy(current, rng)
            if tick in (2, 6, 10):
                body = variants(body, body_text)[rng.choice(list(TRANSFORMS))]
            page = read_body(spec, url, body, "text/html", anchor)[0]
            now = version(page)
            change = compare(previous, now, history)
            if change.substantive and not edit:
                false += 1
                print(f"false alert: {mode} {path.stem} tick {tick}: {change.new_lines[:1]} {change.removed_lines[:1]} {change.new_links[:1]}")
            if edit:
                caught += change.substantive
                missed += not change.substantive
            if number and edit:
                fact_edits += 1
                fact_changed += {f.field: f.value for f in extract(page.title, page.text)} != facts_before
            if change.substantive or page.text != anchor.text:
                anchor, previous, history = Anchor(page.title, page.text, page.region), now, [now, *history[:9]]
    return ticks, false, caught, missed, fact_edits, fact_changed


def main() -> None:
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    for mode in ("loopback", "real-host"):
        ticks, false, caught, missed, fact_edits, fact_changed = run(mode, random.Random(seed))
        print(f"{mode:10} {ticks} page-ticks: {false} false alerts; edits alerted {caught}/{caught + missed}; number edits that changed a fact {fact_changed}/{fact_edits}")


if __name__ == "__main__":
    main()

"""Normalization time per page: a ~30 KB government page (chrome, sidebar, a long article), parsed,
its region chosen and walked into lines; first fetch (no previous text) and a later fetch of a
re-rendered copy (the continuity guard at work). Prints the median and 90th percentile.

    .venv/bin/python benchmarks/normalize.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.normalize import Anchor, normalize_html  # noqa: E402
from tests.variants import variants  # noqa: E402

PAGE = (Path(__file__).resolve().parent.parent / "fixtures" / "pages" / "nia-service-guide.html").read_text(encoding="utf-8")


def page(size: int = 30_000) -> str:
    """The NIA guide fixture with its article and sidebar grown to about `size` bytes."""
    para = "<p>持K字签证入境的外国青年科技人才，可以按照有关规定申请办理停留、居留手续，具体以出入境管理机构的规定为准。第{n}条。</p>\n"
    side = '<li><a href="/mps/bszy/n{n}/">办事指引栏目{n}：出入境证件办理说明</a></li>'
    html, n = PAGE, 0
    while len(html.encode()) < size:
        html = html.replace("<h4>四、收费标准</h4>", para.format(n=n) + "<h4>四、收费标准</h4>").replace("</ul>", side.format(n=n) + "</ul>", 1)
        n += 1
    return html


def timed(html: str, anchor: Anchor | None, runs: int = 200) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per run (CPU time is the figure to trust on a busy machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        normalize_html(html, "http://127.0.0.1:8000/guide.html", anchor=anchor)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def main() -> None:
    html = page()
    first = normalize_html(html, "http://127.0.0.1:8000/guide.html")
    rerender = variants(html.encode(), first.text.split("\n", 1)[1])["all"].decode()
    anchor = Anchor(first.title, first.text, first.region)
    print(f"page: {len(html.encode()) / 1024:.1f} KB, main text {len(first.text)} characters ({first.region})")
    for label, body, anc in (("first fetch", html, None), ("same page, previous text known", html, anchor), ("re-rendered, previous text known", rerender, anchor)):
        wall, cpu = timed(body, anc)
        print(f"{label:34} median {statistics.median(wall):6.2f} ms wall, {statistics.median(cpu):6.2f} ms CPU   p90 {sorted(wall)[int(len(wall) * 0.9)]:6.2f} ms wall")


if __name__ == "__main__":
    main()

"""Main text that never silently goes missing, through real crawls (Scrapy → loopback server → SQLite):
cut-off bodies are failures, empty bodies are failures, a re-render keeps the text, and the real
pages other monitors keep (../shared/real-pages) alert exactly when their labels say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from crawler.outcome import truncated
from kvwatch.fixture_server import FixtureServer, Route
from store.models import Fetch, Snapshot
from tests.conftest import PAGES, PATIENT_CRAWL, ROOT, kvwatch, write_watchlist
from tests.variants import variants

REAL_PAGES = ROOT.parent / "shared" / "real-pages"
CONTENT = sorted(p for p in PAGES.iterdir() if p.suffix in (".html", ".pdf") and p.stem not in ("challenge-412", "maintenance"))
CUTS = [n / 10 for n in range(1, 10)]
TYPES = {".html": "text/html", ".pdf": "application/pdf"}


def _rows(db: str) -> tuple[list[Fetch], list[Snapshot]]:
    engine = create_engine(db)
    with Session(engine) as s:
        out = list(s.scalars(select(Fetch).order_by(Fetch.id))), list(s.scalars(select(Snapshot).order_by(Snapshot.id)))
    engine.dispose()
    return out


@pytest.mark.parametrize("path", CONTENT, ids=lambda p: p.stem)
def test_every_cut_of_every_fixture_is_recognised(path: Path) -> None:
    body = path.read_bytes()
    for share in CUTS:
        cut = body[: int(len(body) * share)]
        # with the page's history (its earlier bodies were whole) and without (a first fetch, no Content-Length)
        assert truncated(cut, False, True), (share, cut[-80:])
        assert truncated(cut, False, None), (share, cut[-80:])
    assert truncated(body, False, True) is None and truncated(body, True, None) is None


def test_cut_bodies_through_a_crawl_never_become_snapshots(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    for path in CONTENT:
        server.route(path.name, Route(200, path.read_bytes(), {"Content-Type": TYPES[path.suffix]}))
    write_watchlist(tmp_path, "\n".join(f'[[page]]\nid = "{p.stem}"\nurl = "{server.url(p.name)}"\nkind = "{"listing" if p.stem.endswith("-news") else "auto"}"\n'
                                        for p in CONTENT), crawl=PATIENT_CRAWL)
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    fetches, baseline = _rows(sqlite_url)
    assert {s.page_id for s in baseline if "~" not in s.page_id} == {p.stem for p in CONTENT}, [(f.page_id, f.outcome, f.reason) for f in fetches if f.outcome != "ok"]
    for share in CUTS:
        for path in CONTENT:  # no Content-Length: the connection closes where the page is cut
            body = path.read_bytes()
            server.route(path.name, Route(200, body[: int(len(body) * share)], {"Content-Type": TYPES[path.suffix]}, behaviour="close"))
        assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    fetches, snaps = _rows(sqlite_url)
    assert len(snaps) == len(baseline), [s.page_id for s in snaps[len(baseline):]]
    cut_fetches = [f for f in fetches[len(baseline):] if "~" not in f.page_id and f.started_at > baseline[-1].first_seen]
    assert len(cut_fetches) == len(CONTENT) * len(CUTS)
    assert all(f.outcome == "error" and "truncated" in f.reason for f in cut_fetches), {(f.page_id, f.reason) for f in cut_fetches if "truncated" not in f.reason}


def test_empty_body_with_a_title_and_a_rerender_through_a_crawl(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    page = (PAGES / "nia-service-guide.html").read_bytes()
    html = {"Content-Type": "text/html; charset=utf-8"}
    server.route("guide.html", Route(200, page, html))
    write_watchlist(tmp_path, f'[[page]]\nid = "nia-service-guide"\nurl = "{server.url("guide.html")}"\n')
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    main = _rows(sqlite_url)[1][0].text
    for name, variant in variants(page, main.split("\n", 1)[1]).items():
        server.route("guide.html", Route(200, variant, html))
        assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0, name
    server.route("guide.html", Route(200, b"<html><head><title>Guide</title></head><body>\n</body></html>", html))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    fetches, snaps = _rows(sqlite_url)
    assert len(snaps) == 1, "a re-render or an empty body became a snapshot"
    assert fetches[-1].outcome == "error" and "no text" in fetches[-1].reason
    alerts = json.loads(kvwatch("--db", sqlite_url, "alerts", "--json", "--kind", "content", cwd=tmp_path).stdout)
    assert alerts == []


def _pairs() -> list[dict]:
    if not (REAL_PAGES / "labels.json").exists():
        return []
    return [p for p in json.loads((REAL_PAGES / "labels.json").read_text(encoding="utf-8"))["pairs"] if not p["ambiguous"]]


@pytest.mark.skipif(not (REAL_PAGES / "labels.json").exists(), reason=f"{REAL_PAGES} is absent (the shared real pages of other monitors)")
def test_real_pages_from_other_monitors_alert_exactly_as_labelled(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    pairs = _pairs()
    entries = []
    for pair in pairs:
        options = pair.get("page_options") or {}
        ignore = "".join(f"\nignore = {json.dumps(options['ignore'])}" if options.get("ignore") else "")
        entries.append(f'[[page]]\nid = "{pair["id"]}"\nurl = "{server.url(pair["id"] + ".html")}"{ignore}\n')
    write_watchlist(tmp_path, "\n".join(entries), crawl=PATIENT_CRAWL)
    for side in ("before", "after"):  # real files are read in place, never copied into the project
        for pair in pairs:
            server.route(pair["id"] + ".html", Route(200, (REAL_PAGES / pair[side]).read_bytes(), {"Content-Type": "text/html"}))
        result = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    alerts = json.loads(kvwatch("--db", sqlite_url, "alerts", "--json", cwd=tmp_path).stdout)
    alerted = {a["page_id"] for a in alerts if a["kind"] in ("content", "new_link")}
    wrong = {p["id"]: p["label"] for p in pairs if (p["id"] in alerted) != (p["label"] == "change")}
    assert not wrong, wrong


def test_a_rotating_list_of_related_articles_is_chrome_even_without_a_telling_class() -> None:
    from crawler.normalize import normalize_html

    def page(items: list[str]) -> str:
        related = "".join(f'<li><a href="/n/c{i}/content.html">{t}</a></li>' for i, t in enumerate(items))
        return ("<html><body><div class='x1'><div class='x2'><p>K字签证持有人在华停留期间需要延长停留期限的，应当在停留期限届满7日前申请延期。</p>"
                "<p>附件：</p><ul><li><a href='/P0201.pdf'>延期申请表</a></li><li><a href='/P0202.doc'>办事指南</a></li><li><a href='/P0203.pdf'>收费标准</a></li></ul>"
                f"<ul class='q7z'>{related}</ul></div></div></body></html>")

    before = normalize_html(page(["某口岸通关提示", "移民管理统计数据发布", "国庆假期出入境提示"]), "http://127.0.0.1/n.html")
    after = normalize_html(page(["冬季出行安全提示", "移民管理统计数据发布", "某地开展专项检查"]), "http://127.0.0.1/n.html")
    assert before.text == after.text and [link.url for link in before.links] == [link.url for link in after.links]
    assert "延期申请表" in before.text and len(before.links) == 3  # the attachments stay content


@pytest.mark.parametrize("heading", ["相关新闻", "热点推荐", "Related articles"])
def test_a_headed_related_list_is_chrome_even_next_to_a_short_notice(heading: str) -> None:
    from crawler.normalize import normalize_html

    def page(n: int) -> str:
        items = "".join(f'<li><a href="/n/{n + i}.htm">新闻标题第{n + i}号：某地开展专项活动</a></li>' for i in range(4))
        return f"<html><body><div class='a1'><p>K字签证每次停留不超过180日。</p><div class='b7'><h3>{heading}</h3><ul>{items}</ul></div></div></body></html>"

    assert normalize_html(page(100), "http://127.0.0.1/n.html").text == normalize_html(page(200), "http://127.0.0.1/n.html").text == "K字签证每次停留不超过180日。"


def test_a_page_that_is_only_a_list_of_links_keeps_it() -> None:
    from crawler.normalize import normalize_html

    links = normalize_html("<html><body><ul><li><a href='/a'>Link a</a></li><li><a href='/b'>Link b</a></li><li><a href='/c'>Link c</a></li></ul></body></html>",
                           "http://127.0.0.1/l.html").links
    assert [link.text for link in links] == ["Link a", "Link b", "Link c"]


@pytest.mark.parametrize("h1", [True, False])
def test_a_renamed_notice_is_a_change_with_or_without_an_h1(h1: bool) -> None:
    from crawler.normalize import normalize_html

    def page(title: str) -> str:
        heading = "<h1>关于K字签证的通知</h1>" if h1 else ""
        return f"<html><head><title>{title}_国家移民管理局</title></head><body><div>{heading}<p>K字签证每次停留不超过180日，可多次入境。</p></div></body></html>"

    before, after = normalize_html(page("关于K字签证的通知"), "http://127.0.0.1/t.html"), normalize_html(page("关于K字签证的通知（修订）"), "http://127.0.0.1/t.html")
    assert before.text.splitlines()[0] == "关于K字签证的通知" and after.text != before.text
    assert "关于K字签证的通知（修订）" in after.text.splitlines()


@pytest.mark.parametrize("counter", ["Number of views (4116)", "阅读次数(123)", "阅读次数（1,234）", "点击数：88", "点击数：", "浏览量 999", "页面生成时间 2026-09-28 23:12:36"])
def test_counters_and_generation_stamps_are_not_text(counter: str) -> None:
    from crawler.noise import clean_line

    assert clean_line(f"K字签证每次停留不超过180日。{counter}") == "K字签证每次停留不超过180日。"


# Every volatile label the noise patterns know, in the shapes the real sites print them, crossed with
# where they sit on a line: the fast literal gates in `clean_line` must never change what the patterns
# alone would do. A new label is one line here.
NOISE_EXAMPLES = (
    "今天是2026年11月21日 星期六", "今天是：2026-11-21", "发布时间：2026-09-28 10:00", "更新日期: 2026年9月28日", "录入时间：2026/9/28",
    "浏览次数：1037", "阅读量(12)", "点击数：", "访问人次【88】", "查看次数 3 次", "Views: 1,234", "page views 77", "HITS: 5",
    "visitors (9)", "reads 3", "页面生成时间 2026-09-28 23:12:36", "最后更新：2026-09-28", "【字体：大 中 小】", "字号：大中小",
    "【打印】", "【 关闭窗口 】", "Updated: 2026-09-28", "Published: 2026-09-28T10:00", "Release time: 2026-09-28", "Date: 2026-09-28 10:00:01",
    "上一篇：关于签证的通知", "下一条: 通知", "Previous: notice", "Next：notice", "分享到：", "Share to:", "share", "打印 | 关闭", "Print | Close",
    "返回顶部", "京ICP备05070218号", "网站标识码bm01000001", "京公网安备11010202000001号", "版权所有：中国政府网", "Copyright © 2026",
    "All Rights Reserved", "© 2026 NIA", "扫一扫在手机打开当前页", "微信扫一扫", "手机扫码", "【", "  ", "",
)
CONTEXTS = ("{}", "K字签证每次停留不超过180日。{}", "{} 持K字签证入境", "第1条：{}编号3-1。")


def _ungated(line: str) -> str:
    from crawler.noise import VOLATILE_LINES, VOLATILE_SPANS

    if any(pattern.search(line) for pattern in VOLATILE_LINES):
        return ""
    for pattern in VOLATILE_SPANS:
        line = pattern.sub("", line)
    return line.strip(" |")


@pytest.mark.parametrize("example", NOISE_EXAMPLES)
def test_the_noise_gates_never_change_what_the_patterns_do(example: str) -> None:
    from crawler.noise import clean_line

    for context in CONTEXTS:
        line = context.format(example)
        assert clean_line(line) == _ungated(line), line
    assert not example.strip() or _ungated(example) != example  # every example is noise the patterns know

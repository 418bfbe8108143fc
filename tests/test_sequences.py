"""Cycle sequences through Scrapy and the loopback server: alerts exactly when they should be."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kvwatch.fixture_server import FixtureServer, Route
from tests.conftest import PAGES, kvwatch, write_watchlist

PAGE = (PAGES / "gov-k-visa-decision.html").read_text(encoding="utf-8")
HTML = {"Content-Type": "text/html; charset=utf-8"}


def _noisy(cycle: int, text: str = PAGE) -> bytes:
    return (text.replace("浏览次数：18342", f"浏览次数：{18342 + cycle * 17}")
            .replace("今天是2026年11月25日 星期三", f"今天是2026年11月{25 + cycle % 3}日")
            .replace("a81f3c0d9e", f"tok{cycle:07d}").replace("某部门就冬季出行答问", f"轮换文章{cycle}")).encode()


def _setup(server: FixtureServer, tmp_path: Path) -> None:
    write_watchlist(tmp_path, f'[[page]]\nid = "gov-k-visa-decision"\nurl = "{server.url("gov-k-visa-decision.html")}"\n')


def _cycle(tmp_path: Path, db: str, body: bytes | Route, server: FixtureServer, **kw: object) -> str:
    route = body if isinstance(body, Route) else Route(200, body, HTML)
    server.route("gov-k-visa-decision.html", route)
    result = kvwatch("--db", db, "crawl", cwd=tmp_path, **kw)  # type: ignore[arg-type]
    assert result.returncode in (0, 70), result.stderr
    return result.stdout


def _alerts(tmp_path: Path, db: str, *args: str) -> list[dict]:
    out = kvwatch("--db", db, "alerts", "--json", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_noise_every_cycle_and_failures_mid_run_raise_nothing(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    _setup(server, tmp_path)
    _cycle(tmp_path, sqlite_url, _noisy(0), server)
    baseline = _alerts(tmp_path, sqlite_url)
    assert [(a["kind"], a["facts"]) for a in baseline] == [("fact", [{"field": "effective_date", "old": None, "new": "2025-10-01"}])]
    sequence = [_noisy(1), Route(502, b"bad gateway"), _noisy(2), Route(412, (PAGES / "challenge-412.html").read_bytes(), HTML), _noisy(3)]
    for step in sequence:
        _cycle(tmp_path, sqlite_url, step, server)
    assert _alerts(tmp_path, sqlite_url) == baseline
    history = kvwatch("--db", sqlite_url, "history", "gov-k-visa-decision", cwd=tmp_path).stdout.strip().splitlines()
    assert len(history) == 1 + 1, "noise created snapshots"  # header, one snapshot


def test_a_real_change_alerts_once_with_diff_and_relevance(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    _setup(server, tmp_path)
    _cycle(tmp_path, sqlite_url, _noisy(0), server)
    changed = PAGE.replace("本决定自２０２５年１０月１日起施行。", "本决定自２０２５年１０月１日起施行。K字签证每次停留期限不超过180日。")
    out = _cycle(tmp_path, sqlite_url, _noisy(1, changed), server)
    assert "2 alerts (1 content, 1 fact)" in out
    _cycle(tmp_path, sqlite_url, _noisy(2, changed), server)
    alerts = _alerts(tmp_path, sqlite_url, "--kind", "content")
    assert len(alerts) == 1
    alert = alerts[0]
    assert set(alert) == {"id", "page_id", "url", "kind", "relevant", "detected_at", "facts", "summary", "diff", "backfilled"}
    assert (alert["page_id"], alert["kind"], alert["relevant"], alert["facts"]) == ("gov-k-visa-decision", "content", True, [])
    facts = _alerts(tmp_path, sqlite_url, "--kind", "fact")
    assert [f["facts"] for f in facts] == [[{"field": "effective_date", "old": None, "new": "2025-10-01"}],
                                           [{"field": "stay_duration", "old": None, "new": "P180D"}]]
    assert "{+K字签证每次停留期限不超过180日。+}" in alert["diff"]
    assert alert["url"] == server.url("gov-k-visa-decision.html")
    assert _alerts(tmp_path, sqlite_url, "--kind", "health") == []
    assert _alerts(tmp_path, sqlite_url, "--page", "other") == []
    assert [a["kind"] for a in _alerts(tmp_path, sqlite_url, "--since", alert["detected_at"])] == ["content", "fact"]
    assert _alerts(tmp_path, sqlite_url, "--since", "2999-01-01") == []

    as_json = json.loads(kvwatch("--db", sqlite_url, "diff", "gov-k-visa-decision", "--format", "json", cwd=tmp_path).stdout)
    assert as_json["spans"] == [{"op": "insert", "text": "K字签证每次停留期限不超过180日。", "before": "提交相应的证明材料”。\n本决定自2025年10月1日起施行。", "after": ""}]
    text = kvwatch("--db", sqlite_url, "diff", "gov-k-visa-decision", cwd=tmp_path).stdout
    assert "{+K字签证每次停留期限不超过180日。+}" in text and "\x1b[" not in text  # piped: plain markers
    html = kvwatch("--db", sqlite_url, "diff", "gov-k-visa-decision", "--format", "html", cwd=tmp_path).stdout
    assert "<ins>K字签证每次停留期限不超过180日。</ins>" in html


def test_three_failures_raise_one_health_alert_and_recovery_one_notice(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    _setup(server, tmp_path)
    _cycle(tmp_path, sqlite_url, _noisy(0), server)
    for _ in range(5):
        _cycle(tmp_path, sqlite_url, Route(200, (PAGES / "maintenance.html").read_bytes(), HTML), server)
    health = _alerts(tmp_path, sqlite_url, "--kind", "health")
    assert len(health) == 1 and "(3 attempts in a row): maintenance: maintenance page" in health[0]["summary"]
    assert health[0]["relevant"] is True  # the page's last good text is about the K visa
    for cycle in range(2):
        _cycle(tmp_path, sqlite_url, _noisy(cycle), server)
    health = _alerts(tmp_path, sqlite_url, "--kind", "health")
    assert len(health) == 2 and "recovered after 5 failed attempts" in health[1]["summary"]
    assert [a["kind"] for a in _alerts(tmp_path, sqlite_url)] == ["fact", "health", "health"], "the maintenance page caused an alert"


def test_flip_flop_alerts_once(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    _setup(server, tmp_path)
    a = PAGE.replace("本决定自", "<p>滚动通知：办公时间调整。</p>本决定自")
    b = PAGE.replace("本决定自", "<p>滚动通知：节假日安排。</p>本决定自")
    for body in (a, b, a, b, a, b):
        _cycle(tmp_path, sqlite_url, body.encode(), server)
    alerts = _alerts(tmp_path, sqlite_url, "--kind", "content")
    assert len(alerts) == 1 and "节假日安排" in alerts[0]["diff"]


def test_a_crash_after_the_snapshot_write_still_yields_the_alert_once(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    _setup(server, tmp_path)
    _cycle(tmp_path, sqlite_url, _noisy(0), server)
    changed = PAGE.replace("２０２５年１０月１日", "２０２６年１月１日").encode()
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path, env={"KVWATCH_FAULT": "after-crawl"})
    server.route("gov-k-visa-decision.html", Route(200, changed, HTML))
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path, env={"KVWATCH_FAULT": "after-crawl"})
    assert out.returncode == 70
    assert _alerts(tmp_path, sqlite_url, "--kind", "content") == []
    _cycle(tmp_path, sqlite_url, Route(200, changed, HTML), server)
    _cycle(tmp_path, sqlite_url, Route(200, changed, HTML), server)
    alerts = _alerts(tmp_path, sqlite_url, "--kind", "content")
    assert len(alerts) == 1 and "本决定自[-2025年10-]{+2026年1+}月1日起施行。" in alerts[0]["diff"]
    facts = [a["facts"] for a in _alerts(tmp_path, sqlite_url, "--kind", "fact")]
    assert facts[-1] == [{"field": "effective_date", "old": "2025-10-01", "new": "2026-01-01"}] and len(facts) == 2


def test_facts_command_shows_values_per_source_history_and_disagreements(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    tiers = {"embassy-my-visa": "mission", "consulate-visa-types-table": "mission", "blog-k-visa-rumour": "other"}
    write_watchlist(tmp_path, "\n".join(
        f'[[page]]\nid = "{pid}"\nurl = "{server.url(pid + ".html")}"\ntags = {{ tier = "{tier}" }}\n' for pid, tier in tiers.items()
    ))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    out = json.loads(kvwatch("--db", sqlite_url, "facts", "--json", "--field", "stay_duration", cwd=tmp_path).stdout)
    assert sorted((f["page_id"], f["value"], f["tier"]) for f in out["facts"]) == [
        ("consulate-visa-types-table", "P90D", "mission"), ("embassy-my-visa", "P180D", "mission")]
    assert out["disagreements"] == {"stay_duration": {"P180D": ["embassy-my-visa"], "P90D": ["consulate-visa-types-table"]}}
    validity = json.loads(kvwatch("--db", sqlite_url, "facts", "--json", "--field", "validity", cwd=tmp_path).stdout)
    assert ("blog-k-visa-rumour", "P10Y", "other") in [(f["page_id"], f["value"], f["tier"]) for f in validity["facts"]]
    assert set(validity["disagreements"]["validity"]) == {"P5Y", "P2Y"}, "a rumour counted as an official source"
    past = json.loads(kvwatch("--db", sqlite_url, "facts", "--json", "--at", "2020-01-01", cwd=tmp_path).stdout)
    assert past["facts"] == []
    text = kvwatch("--db", sqlite_url, "facts", cwd=tmp_path).stdout
    assert re.search(r"^!\s+stay per entry\s+180 days\s+embassy-my-visa\s+mission", text, re.M) and "sources disagree on stay per entry" in text
    lines = text.splitlines()
    assert text.index("stay per entry") < text.index("validity  ") and lines[-1].startswith("legend: ! official sources disagree")
    bad = kvwatch("--db", sqlite_url, "facts", "--field", "stay", cwd=tmp_path)
    assert bad.returncode == 1 and "valid fields: stay_duration" in bad.stderr


def test_a_linked_institution_list_pdf_is_read_and_its_changes_are_named(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    import io

    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    def pdf(names: list[str]) -> bytes:
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        out = io.BytesIO()
        doc = canvas.Canvas(out, invariant=1)
        doc.setFont("STSong-Light", 12)
        for i, line in enumerate(["K字签证知名高校和科研机构名单", *names]):
            doc.drawString(60, 780 - 24 * i, line)
        doc.save()
        return out.getvalue()

    write_watchlist(tmp_path, f'[[page]]\nid = "mission-k-institutions-link"\nurl = "{server.url("mission-k-institutions-link.html")}"\n')
    server.route("P020251101000001.pdf", Route(200, (PAGES / "mission-k-institutions-pdf.pdf").read_bytes(), {"Content-Type": "application/pdf"}))
    assert "(+1 linked)" in kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).stdout
    server.route("P020251101000001.pdf", Route(200, pdf(["东岳理工大学", "南海海洋研究所", "北辰工业大学"]), {"Content-Type": "application/pdf"}))
    kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    facts = _alerts(tmp_path, sqlite_url, "--kind", "fact")
    parent = [a for a in facts if a["page_id"] == "mission-k-institutions-link"]
    assert parent[0]["facts"] == [
        {"field": "institution_list", "old": None, "new": server.url("P020251101000001.pdf")}]
    latest = facts[-1]
    assert "~" in latest["page_id"] and latest["facts"][0]["field"] == "institution_list"
    assert latest["facts"][0]["new"] == "东岳理工大学; 北辰工业大学; 南海海洋研究所"
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from store.models import Alert

    with Session(create_engine(sqlite_url)) as s:
        stored = s.get(Alert, latest["id"])
        assert (stored.facts[0]["added"], stored.facts[0]["removed"]) == (["北辰工业大学"], ["西湖湾科学院"])

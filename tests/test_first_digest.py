"""The first digest of a new deployment summarises the state in a few lines; changes come first; health
stays apart. Golden renderings of a 40-page baseline; a 300-page baseline stays small."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from notifier.digest import as_json, build, render_html, render_slack, render_text
from notifier.subscribers import Subscriber
from tests.conftest import FIXTURES

T0 = datetime(2026, 11, 25, 2, 0, 0)
GOLDEN = FIXTURES / "digests"
SUB = Subscriber(id="new-office", name="New international office", email=("o@kvwatch.test",), timezone="Asia/Shanghai")


def _alert(i: int, kind: str, facts: tuple[dict[str, Any], ...] = (), summary: str = "", minutes: int = 0) -> Any:
    return SimpleNamespace(id=i, page_id=f"mission-{i:03d}", url=f"https://m{i}.china-embassy.gov.cn/chn/lsyw/", kind=kind, relevant=True,
                           detected_at=T0 + timedelta(minutes=minutes), facts=list(facts), links=[], summary=summary, diff="", backfilled=False)


def baseline(pages: int) -> list[Any]:
    """Every page read for the first time: the same K-visa facts, a few missions saying something else."""
    alerts = []
    for i in range(1, pages + 1):
        stay = "P90D" if i % 20 == 0 else "P180D"
        facts = ({"field": "stay_duration", "old": None, "new": stay, "evidence": f"K字签证每次停留不超过{stay[1:-1]}日。", "baseline": True},
                 {"field": "validity", "old": None, "new": "P5Y", "evidence": "有效期5年。", "baseline": True},
                 {"field": "entries", "old": None, "new": "multiple", "evidence": "可多次入境。", "baseline": True},
                 {"field": "age_limit", "old": None, "new": "18-45", "evidence": "申请人年龄18至45周岁。", "baseline": True},
                 {"field": "effective_date", "old": None, "new": "2025-10-01", "evidence": "自2025年10月1日起施行。", "baseline": True})
        alerts.append(_alert(i, "fact", facts))
    return alerts


def _names(alerts: list[Any]) -> dict[str, str]:
    return {a.page_id: f"Mission {int(a.page_id[-3:])}" for a in alerts}


def test_first_digest_of_a_40_page_baseline_with_one_real_change_matches_its_goldens() -> None:
    alerts = baseline(40)
    alerts.append(_alert(41, "fact", ({"field": "stay_duration", "old": "P180D", "new": "P90D", "evidence": "K字签证每次停留不超过90日。"},), minutes=30))
    alerts.append(_alert(42, "health", summary="Mission 7: failing since 2026-11-25 01:00 UTC (3 attempts in a row): error: timeout after 30 s", minutes=31))
    digest = build(SUB, alerts, _names(alerts), T0)
    assert digest.subject.startswith("kvwatch: K visa — stay per entry: 180 days → 90 days (Mission 41")
    assert set(digest.alert_ids) == set(range(1, 43))  # every alert is carried, so every delivery is confirmed
    rendered = {"first-digest.txt": render_text(digest), "first-digest.html": render_html(digest),
                "first-digest.slack.json": as_json([payload for _, payload in render_slack(digest)]) + "\n"}
    for name, got in rendered.items():
        if os.environ.get("KVWATCH_UPDATE_GOLDENS"):
            (GOLDEN / name).write_text(got, encoding="utf-8")
        assert got == (GOLDEN / name).read_text(encoding="utf-8"), name
    text = rendered["first-digest.txt"]
    assert text.splitlines()[0].startswith("K visa — stay per entry: 180 days → 90 days")  # the first line is the change
    assert text.index("K-VISA FACT CHANGES") < text.index("K VISA TODAY") < text.index("PAGE HEALTH")
    assert "stay per entry: 180 days (Mission 1, Mission 2 and 36 more agree); 90 days (Mission 20, Mission 40 agree)" in text


@pytest.mark.parametrize("pages", [300])
def test_a_300_page_baseline_is_a_short_digest(pages: int) -> None:
    alerts = baseline(pages)
    digest = build(SUB, alerts, _names(alerts), T0)
    assert len(render_text(digest).encode()) < 20_000 and len(render_text(digest).splitlines()) < 20
    assert len(render_slack(digest)) <= 3 and len(render_html(digest).encode()) < 20_000
    assert digest.subject.startswith("kvwatch: K visa today: stay per entry 180 days (")


def test_the_subject_names_the_most_important_thing() -> None:
    health = _alert(1, "health", summary="Mission 1: failing")
    notice = SimpleNamespace(**{**vars(_alert(2, "new_link", summary="Mission 2: new link “K字签证申请须知”")), "links": [("K字签证申请须知", "https://m2/x.htm")]})
    change = _alert(3, "content", summary="Mission 3: 1 line changed")
    fact = _alert(4, "fact", ({"field": "validity", "old": "P5Y", "new": "P2Y", "evidence": "有效期2年。"},))
    names = {f"mission-{i:03d}": f"Mission {i}" for i in range(1, 5)}
    assert build(SUB, [health, notice, change, fact], names, T0).subject.startswith("kvwatch: K visa — validity: 5 years → 2 years")
    assert build(SUB, [health, notice, change], names, T0).subject == "kvwatch: new K-visa notice — Mission 2: new link “K字签证申请须知” (+2 more)"
    assert build(SUB, [health, change], names, T0).subject == "kvwatch: Mission 3: 1 line changed (+1 more)"
    assert build(SUB, [health], names, T0).subject == "kvwatch: page health — Mission 1: failing"
    assert "unsubscribe" not in render_text(build(SUB, [health], names, T0)).lower()  # nothing reads such replies; none is promised


def test_the_digest_header_names_the_missions_a_subscriber_follows(tmp_path: Any) -> None:
    """The store's pages tagged as missions (as `kvwatch discover` writes them) that a subscriber's
    tags select are named in the digest's header, text and HTML; a subscriber without filters gets none."""
    from store.db import make_engine, prepare, session_scope
    from store.pages import followed_missions, sync

    engine = prepare(make_engine(f"sqlite:///{tmp_path / 'k.db'}"))
    pages = [SimpleNamespace(id=f"mission-{cc}-{city}-visa-zh", url=f"http://{cc}.x/", name="", kind="listing", enabled=True,
                             tags={"agency": "mission", "country": cc, "city": city, "language": "zh", "kind": kind})
             for cc, city, kind in (("ke", "embassy", "embassy"), ("us", "losangeles", "consulate-general"), ("us", "chicago", "consulate-general"))]
    with session_scope(engine) as session:
        sync(session, pages)
        us = followed_missions(session, (("country", "us"),))
        everyone = followed_missions(session)
    assert us == ["us chicago consulate-general", "us losangeles consulate-general"] and everyone == []
    digest = build(SUB, baseline(2), _names(baseline(2)), T0, tuple(us))
    assert "Missions you follow: us chicago consulate-general, us losangeles consulate-general" in render_text(digest)
    assert "Missions you follow: us chicago consulate-general" in render_html(digest)
    assert "Missions you follow" not in render_text(build(SUB, baseline(2), _names(baseline(2)), T0))


def test_with_a_public_url_digests_link_each_change_to_its_permanent_page(monkeypatch: pytest.MonkeyPatch) -> None:
    alerts = baseline(1) + [_alert(9, "fact", ({"field": "stay_duration", "old": "P180D", "new": "P90D", "evidence": "每次停留不超过90日。"},), minutes=5)]
    monkeypatch.setenv("KVWATCH_PUBLIC_URL", "https://kvwatch.example.org/")
    digest = build(SUB, alerts, _names(alerts), T0)
    assert "  kvwatch: https://kvwatch.example.org/alerts/9" in render_text(digest)
    assert 'href="https://kvwatch.example.org/alerts/9"' in render_html(digest)
    assert "https://kvwatch.example.org/alerts/9" in json.dumps([payload for _, payload in render_slack(digest)])
    monkeypatch.delenv("KVWATCH_PUBLIC_URL")
    assert "kvwatch.example.org" not in render_text(build(SUB, alerts, _names(alerts), T0))

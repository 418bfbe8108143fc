"""K-visa facts: golden facts per fixture page, numerals, attribution, the timeline and `kvwatch facts`."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from crawler.facts import extract
from crawler.facts.values import duration, number
from crawler.fetch import read_body
from crawler.watchlist import PageSpec
from store import facts as fact_store
from store import pages
from store.db import open_store, session_scope
from store.snapshots import Attempt, Capture, record
from tests.conftest import FIXTURES, PAGES

GOLDEN = FIXTURES / "facts"
CONTENT = sorted(p for p in PAGES.iterdir() if p.suffix in (".html", ".pdf") and p.stem not in ("challenge-412", "maintenance"))


def _facts(path: Path) -> list[dict[str, str]]:
    url = f"http://127.0.0.1:8000/{path.name}"
    page, _ = read_body(PageSpec(id=path.stem, url=url, kind="listing" if path.stem.endswith("-news") else "auto"), url, path.read_bytes(), "text/html")
    found = extract(page.title, page.text, tuple((link.text, link.url) for link in page.links), pdf=page.region == "pdf")
    return [{"field": f.field, "value": f.value, "evidence": f.evidence} for f in found]


@pytest.mark.parametrize("path", CONTENT, ids=lambda p: p.stem)
def test_fixture_page_facts_match_golden(path: Path) -> None:
    golden = GOLDEN / f"{path.stem}.json"
    got = _facts(path)
    if os.environ.get("KVWATCH_UPDATE_GOLDENS"):
        golden.write_text(json.dumps(got, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden {golden}; run with KVWATCH_UPDATE_GOLDENS=1 and review it"
    assert got == json.loads(golden.read_text(encoding="utf-8"))


def test_every_content_fixture_has_golden_facts() -> None:
    assert {p.stem for p in CONTENT} == {g.stem for g in GOLDEN.glob("*.json")}


def _values(title: str, text: str) -> dict[str, str]:
    return {f.field: f.value for f in extract(title, text)}


@pytest.mark.parametrize(("num", "unit", "iso"), [
    ("一百八十", "日", "P180D"), ("180", "天", "P180D"), ("五", "年", "P5Y"), ("两", "年", "P2Y"),
    ("十二", "个月", "P12M"), ("半", "年", "P6M"), ("90", "days", "P90D"), ("1", "year", "P1Y"),
])
def test_durations_from_chinese_numerals_and_english(num: str, unit: str, iso: str) -> None:
    assert duration(num, unit) == iso


def test_numbers_never_mangle_words() -> None:
    assert number("二〇二五") == 2025 and number("两") == 2
    assert _values("K字签证", "K字签证统一管理，有效期一年。") == {"validity": "P1Y"}


def test_fullwidth_digits_are_ascii_before_extraction() -> None:
    url = "http://127.0.0.1/x"
    page, _ = read_body(PageSpec(id="x", url=url), url, "<main><p>K字签证每次停留不超过１８０日。</p></main>".encode(), "text/html")
    assert _values(page.title, page.text) == {"stay_duration": "P180D"}


def test_other_visa_types_numbers_are_not_the_k_visas() -> None:
    text = "K字签证与Z字签证不同，Z字签证停留期为30日，K字签证停留期为180日。"
    assert _values("签证说明", text)["stay_duration"] == "P180D"
    assert _values("签证说明", "Z字签证停留期为30日。\n另有K字签证。") == {}
    assert _values("Visas", "Holders of an X1 visa may stay up to 180 days; this does not apply to the K visa.") == {}


def test_age_ranges_and_limits() -> None:
    assert _values("K字签证", "申请人年龄为18至45周岁。")["age_limit"] == "18-45"
    assert _values("K字签证", "申请人年龄不超过四十五周岁。")["age_limit"] == "-45"
    assert _values("K visa", "Applicants must be under the age of 40.")["age_limit"] == "-40"
    assert "age_limit" not in _values("K字签证", "随行子女未满18周岁的，可以申请。")


def test_english_effective_dates() -> None:
    assert _values("K visa", "The new rules for the K visa take effect on October 1, 2025.")["effective_date"] == "2025-10-01"


def test_the_timeline_answers_what_was_true_on_a_date(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    t0 = datetime(2026, 1, 1)
    with session_scope(engine) as s:
        pages.sync(s, [PageSpec(id="emb", url="http://127.0.0.1/emb")])
    with session_scope(engine) as s:
        snaps = [record(s, Attempt("emb", "u", "ok", t0 + timedelta(days=i)), Capture(hash=str(i), text=str(i))).snapshot_id for i in range(3)]
        Obs = type("Obs", (), {})
        def obs(field: str, value: str):  # type: ignore[no-untyped-def]
            o = Obs(); o.field, o.value, o.evidence = field, value, f"{field}={value}"; return o
        assert [c.field for c in fact_store.record(s, "emb", snaps[0], t0, "mission", [obs("stay_duration", "P90D")])] == ["stay_duration"]
        assert fact_store.record(s, "emb", snaps[1], t0 + timedelta(days=1), "mission", [obs("stay_duration", "P90D")]) == []
        changes = fact_store.record(s, "emb", snaps[2], t0 + timedelta(days=2), "mission", [obs("stay_duration", "P180D"), obs("institution_list", "A大学; B学院")])
        assert [(c.field, c.old, c.new) for c in changes] == [("stay_duration", "P90D", "P180D"), ("institution_list", None, "A大学; B学院")]
        assert changes[1].added == ("A大学", "B学院")
    with session_scope(engine) as s:
        assert [f.value for f, _ in fact_store.as_of(s, t0 + timedelta(days=1, hours=12), "stay_duration")] == ["P90D"]
        assert [f.value for f, _ in fact_store.as_of(s, None, "stay_duration")] == ["P180D"]
    assert fact_store.humanize("stay_duration", "P180D") == "180 days" and fact_store.humanize("age_limit", "-45") == "up to age 45"


def test_institution_lists_in_prose_english_and_chinese() -> None:
    en = _values("K visa", "Recognised universities and research institutions include, among others: Eastmount University, Lakeshore Institute of Science, "
                           "Harbor College of Engineering and the Northfield Academy of Sciences.")
    assert en["institution_list"] == "Eastmount University; Harbor College of Engineering; Lakeshore Institute of Science; the Northfield Academy of Sciences"
    zh = _values("K字签证", "知名高校包括：东岳理工大学、南海海洋研究所和西湖湾科学院等。")
    assert zh["institution_list"] == "东岳理工大学; 南海海洋研究所; 西湖湾科学院"


def test_another_policy_named_mid_page_switches_the_scope() -> None:
    text = "K字签证有效期为5年。\n二、240小时过境免签：外国人可停留不超过240小时。\n三、K字签证持有人每次停留不超过180日。"
    assert _values("K字签证说明", text) == {"validity": "P5Y", "stay_duration": "P180D"}
    assert "stay_duration" not in _values("K字签证说明", "K字签证有效期为5年。\n二、240小时过境免签：每次停留不超过10日。")


def test_traditional_chinese_evidence_is_the_pages_own_sentence() -> None:
    facts = {f.field: f for f in extract("K字簽證", "K字簽證有效期為5年，每次停留不超過180日。")}
    assert facts["validity"].value == "P5Y" and facts["validity"].evidence == "K字簽證有效期為5年，每次停留不超過180日。"


def test_every_duration_the_extractor_can_produce_reads_as_words() -> None:
    from crawler.facts.values import ISO_UNIT

    produced = {duration(num, unit) for unit in ISO_UNIT for num in ("1", "2", "半", "十二", "一百八十")}
    assert {"PT12H", "P15D", "P6M", "P1Y", "P180D"} <= produced
    for value in sorted(produced):
        human = fact_store.humanize("stay_duration", value)
        assert not human.startswith("P") and any(word in human for word in ("day", "week", "month", "year", "hour")), (value, human)
    assert fact_store.humanize("validity", "PT12H") == "12 hours" and fact_store.humanize("validity", "P1Y") == "1 year"

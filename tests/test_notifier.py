"""Subscribers, digests, and delivery through a real SMTP server and a real local Slack receiver."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.watchlist import PageSpec
from notifier.deliver import deliver
from notifier.digest import as_json, build, render_html, render_slack, render_text
from notifier.subscribers import Subscriber, load
from store import alerts, pages
from store.db import open_store, session_scope
from store.errors import ConfigError
from store.models import Alert, Delivery
from tests.conftest import FIXTURES, kvwatch
from tests.receivers import SlackReceiver, SmtpServer, free_port

T0 = datetime(2026, 11, 25, 2, 2, 0)  # 10:02 in Beijing
GOLDEN = FIXTURES / "digests"
SUBSCRIBERS = """
[[subscriber]]
id = "uni-office"
name = "大学国际处 International Office"
email = ["intl@uni.kvwatch.test"]
timezone = "Asia/Shanghai"
kinds = ["fact", "new_link", "content", "health"]

[[subscriber]]
id = "lawyer-slack"
slack = "KVWATCH_TEST_SLACK"
fields = ["stay_duration"]
"""


def _alert_set(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        pages.sync(s, [PageSpec(id="embassy-my-visa", url="https://my.china-embassy.gov.cn/fwzc/lsyw/qz/", name="Embassy in Malaysia"),
                       PageSpec(id="nia-news", url="https://www.nia.gov.cn/n741440/n741547/index.html", name="NIA news")])
    with session_scope(engine) as s:
        add = lambda new, minutes: alerts.add(s, new, T0 + timedelta(minutes=minutes))  # noqa: E731
        add(alerts.NewAlert(key="1", page_id="embassy-my-visa", url="https://my.china-embassy.gov.cn/fwzc/lsyw/qz/", kind="fact", relevant=True,
                            summary="K visa — stay", facts=(
                                {"field": "stay_duration", "old": "P90D", "new": "P180D", "evidence": "K字签证每次停留不超过一百八十日。"},
                                {"field": "institution_list", "old": "A大学", "new": "A大学; B学院", "evidence": "名单", "added": ["B学院"], "removed": []}),
                            ), 0)
        add(alerts.NewAlert(key="2", page_id="nia-news", url="https://www.nia.gov.cn/n741440/n741547/index.html", kind="new_link", relevant=True,
                            summary="NIA news: new link “关于K字签证延期办理的公告”", diff="{+关于K字签证延期办理的公告+}",
                            links=(("关于K字签证延期办理的公告", "https://www.nia.gov.cn/n741440/n741547/c1800/content.html"),)), 1)
        add(alerts.NewAlert(key="3", page_id="embassy-my-visa", url="https://my.china-embassy.gov.cn/fwzc/lsyw/qz/", kind="content", relevant=True,
                            summary="Embassy: 1 line changed; added “<script>alert(1)</script> <!channel> [click](http://evil.example)”",
                            diff="{+<script>alert(1)</script> <!channel> [click](http://evil.example)+}"), 2)
        add(alerts.NewAlert(key="4", page_id="nia-news", url="https://www.nia.gov.cn/n741440/n741547/index.html", kind="health", relevant=True,
                            summary="NIA news: failing since 2026-11-25 01:00 UTC (3 attempts in a row): blocked: HTTP 412"), 3)
        add(alerts.NewAlert(key="5", page_id="nia-news", url="https://www.nia.gov.cn/", kind="content", relevant=False, summary="irrelevant"), 4)


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    _alert_set(engine)
    (tmp_path / "subscribers.toml").write_text(SUBSCRIBERS, encoding="utf-8")
    (tmp_path / "watchlist.toml").write_text('[[page]]\nid = "embassy-my-visa"\nurl = "https://my.china-embassy.gov.cn/fwzc/lsyw/qz/"\n', encoding="utf-8")
    yield engine, load(tmp_path / "subscribers.toml")
    engine.dispose()


def _digest(engine, sub: Subscriber):  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        rows = list(s.scalars(select(Alert).order_by(Alert.id)))
        return build(sub, [a for a in rows if sub.wants(a, {})], {"embassy-my-visa": "Embassy in Malaysia", "nia-news": "NIA news"}, T0 + timedelta(hours=1))


@pytest.mark.parametrize("fmt", ["txt", "html", "slack.json"])
def test_rendered_digests_match_goldens(setup, fmt: str) -> None:  # type: ignore[no-untyped-def]
    engine, subs = setup
    digest = _digest(engine, subs[0])
    got = {"txt": render_text, "html": render_html, "slack.json": lambda d: as_json([p for _, p in render_slack(d)]) + "\n"}[fmt](digest)
    golden = GOLDEN / f"uni-office.{fmt}"
    if os.environ.get("KVWATCH_UPDATE_GOLDENS"):
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8")


def test_digest_order_headline_and_filters(setup) -> None:  # type: ignore[no-untyped-def]
    engine, subs = setup
    digest = _digest(engine, subs[0])
    assert digest.headlines[0].text == "K visa — stay per entry: 90 days → 180 days (Embassy in Malaysia, 2026-11-25 10:02 CST)"
    assert digest.headlines[1].text.startswith("K visa — recognised institutions: +B学院")
    assert [len(digest.notices), len(digest.changes), len(digest.health)] == [1, 1, 1]
    text = render_text(digest)
    assert text.index("K-VISA FACT CHANGES") < text.index("NEW K-VISA NOTICES") < text.index("OTHER CHANGES") < text.index("PAGE HEALTH")
    assert "irrelevant" not in text
    lawyer = _digest(engine, subs[1])  # fields = stay_duration, no health
    assert [h.text[:30] for h in lawyer.headlines] == ["K visa — stay per entry: 90 da"] and lawyer.health == ()


def test_page_text_is_inert_in_html_and_slack(setup) -> None:  # type: ignore[no-untyped-def]
    engine, subs = setup
    digest = _digest(engine, subs[0])
    html = render_html(digest)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<a href="http://evil.example"' not in html
    for _, payload in render_slack(digest):
        texts = [b["text"] for b in payload["blocks"] if "text" in b]
        assert all(t["type"] == "plain_text" for t in texts), "page text must never be mrkdwn"
    assert any("<!channel>" in json.dumps(p, ensure_ascii=False) for _, p in render_slack(digest))  # present, as plain text


def test_long_digests_are_split_not_truncated(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'long.db'}")
    with session_scope(engine) as s:
        pages.sync(s, [PageSpec(id="p", url="http://127.0.0.1/p")])
    with session_scope(engine) as s:
        for i in range(60):
            alerts.add(s, alerts.NewAlert(key=str(i), page_id="p", url="http://127.0.0.1/p", kind="fact", relevant=True, summary="s",
                                          facts=({"field": "fee", "old": None, "new": f"签证费{i}元" + "长" * 4000, "evidence": "e"},)), T0)
    digest = _digest(engine, Subscriber(id="x", slack="X"))
    messages = render_slack(digest)
    assert len(messages) > 1 and all(len(p["blocks"]) <= 50 for _, p in messages)
    assert sorted(i for ids, _ in messages for i in ids) == list(range(1, 61))
    body = "".join(b["text"]["text"] for _, p in messages for b in p["blocks"] if b.get("type") == "section")
    assert all(f"签证费{i}元" + "长" * 4000 in body for i in range(60)), "a fact was truncated"
    assert all(len(b["text"]["text"]) <= 3000 for _, p in messages for b in p["blocks"] if "text" in b)


def test_email_arrives_once_with_headers_both_parts_and_chinese(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, subs = setup
    with SmtpServer() as smtp:
        env = {**smtp.env, "KVWATCH_TEST_SLACK": "http://127.0.0.1:9/unused"}
        first = kvwatch("--db", f"sqlite:///{tmp_path / 'n.db'}", "deliver", cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        second = kvwatch("--db", f"sqlite:///{tmp_path / 'n.db'}", "deliver", cwd=tmp_path, env=env)
    assert len(smtp.inbox.messages) == 1, "a confirmed delivery was sent twice"
    assert "sent 0 messages" in second.stdout
    msg = smtp.inbox.messages[0]
    assert smtp.inbox.recipients == [["intl@uni.kvwatch.test"]]
    assert msg["Subject"].startswith("kvwatch: K visa — stay per entry: 90 days → 180 days")
    assert msg["Message-ID"].startswith("<kvwatch.") and msg["Message-ID"].endswith("@kvwatch.test>")
    assert msg["Date"] and msg["List-Unsubscribe"] is None  # nothing reads unsubscribe requests: none is promised
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    assert "K字签证每次停留不超过一百八十日。" in text and "K字签证每次停留不超过一百八十日。" in html
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_smtp_down_keeps_items_pending_then_delivers_later(setup) -> None:  # type: ignore[no-untyped-def]
    engine, subs = setup
    email_only = (subs[0],)
    dead = {"KVWATCH_SMTP_HOST": "127.0.0.1", "KVWATCH_SMTP_PORT": str(free_port()), "KVWATCH_SMTP_SECURITY": "none"}
    os.environ.update(dead)
    try:
        summary = deliver(engine, email_only, now=T0 + timedelta(hours=1))
        assert summary.delivered == 0 and "ConnectionRefusedError" in summary.failures[0]
        with session_scope(engine) as s:
            rows = list(s.scalars(select(Delivery)))
            assert {(d.status, d.attempts) for d in rows} == {("pending", 1)} and len(rows) == 4
            assert all(d.next_try_at == T0 + timedelta(hours=1, minutes=1) for d in rows)
        with SmtpServer() as smtp:
            os.environ.update(smtp.env)
            assert deliver(engine, email_only, now=T0 + timedelta(hours=1, seconds=30)).messages == 0  # backoff not over
            assert deliver(engine, email_only, now=T0 + timedelta(hours=1, minutes=2)).delivered == 4
            assert deliver(engine, email_only, now=T0 + timedelta(hours=5)).messages == 0
        assert len(smtp.inbox.messages) == 1
    finally:
        for key in ("KVWATCH_SMTP_HOST", "KVWATCH_SMTP_PORT", "KVWATCH_SMTP_SECURITY", "KVWATCH_SMTP_FROM"):
            os.environ.pop(key, None)


def test_slack_500_then_429_retry_after_then_200_delivers_once(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    engine, subs = setup
    slack_only = (subs[1],)
    with SlackReceiver((500, "server_error", {}), (429, "rate_limited", {"Retry-After": "7"}), (200, "ok", {})) as slack:
        monkeypatch.setenv("KVWATCH_TEST_SLACK", slack.url)
        t = T0 + timedelta(hours=1)
        assert deliver(engine, slack_only, now=t).failures[0].endswith("HTTP 500 server_error")
        assert deliver(engine, slack_only, now=t + timedelta(seconds=59)).messages == 0  # backoff: 60 s
        assert "HTTP 429" in deliver(engine, slack_only, now=t + timedelta(seconds=61)).failures[0]
        with session_scope(engine) as s:
            assert {d.next_try_at for d in s.scalars(select(Delivery))} == {t + timedelta(seconds=68)}  # Retry-After honoured
        assert deliver(engine, slack_only, now=t + timedelta(seconds=67)).messages == 0
        done = deliver(engine, slack_only, now=t + timedelta(seconds=68))
        assert (done.messages, done.delivered) == (1, 3)  # fact, new notice and content change in one message
        assert deliver(engine, slack_only, now=t + timedelta(hours=2)).messages == 0
    assert slack.statuses == [500, 429, 200]
    assert slack.posts[0] == slack.posts[1] == slack.posts[2], "the retried payload changed"
    assert "K visa — stay per entry: 90 days → 180 days" in json.dumps(slack.ok_posts[0], ensure_ascii=False)


def test_one_bad_subscriber_does_not_stop_the_others(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    engine, subs = setup
    monkeypatch.delenv("KVWATCH_TEST_SLACK", raising=False)
    with SmtpServer() as smtp:
        for key, value in smtp.env.items():
            monkeypatch.setenv(key, value)
        summary = deliver(engine, subs, now=T0 + timedelta(hours=1))
    assert len(smtp.inbox.messages) == 1 and summary.delivered == 4
    assert summary.failures == ("lawyer-slack: slack to KVWATCH_TEST_SLACK: environment variable KVWATCH_TEST_SLACK is not set (it must hold the incoming-webhook URL)",)


def test_a_crash_between_send_and_record_resends_once_on_the_next_run(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with SlackReceiver() as slack:
        env = {"KVWATCH_TEST_SLACK": slack.url, "KVWATCH_SMTP_HOST": "127.0.0.1", "KVWATCH_SMTP_PORT": str(free_port())}
        db = f"sqlite:///{tmp_path / 'n.db'}"
        crashed = kvwatch("--db", db, "deliver", cwd=tmp_path, env={**env, "KVWATCH_FAULT": "after-send"})
        assert crashed.returncode == 70 and len(slack.posts) == 1
        assert kvwatch("--db", db, "deliver", cwd=tmp_path, env=env).returncode == 0
        assert kvwatch("--db", db, "deliver", cwd=tmp_path, env=env).returncode == 0
    assert len(slack.posts) == 2 and slack.posts[0] == slack.posts[1]


def test_daily_cadence_waits_for_its_time(setup) -> None:  # type: ignore[no-untyped-def]
    engine, _ = setup
    daily = Subscriber(id="daily", email=("d@kvwatch.test",), cadence="daily", timezone="Asia/Shanghai")
    assert daily.due_at(T0) == datetime(2026, 11, 26, 0, 0)  # 08:00 Beijing the next morning
    weekly = Subscriber(id="w", email=("w@kvwatch.test",), cadence="weekly", weekday=0, timezone="UTC")
    assert weekly.due_at(T0) == datetime(2026, 11, 30, 8, 0)  # the next Monday
    with SmtpServer() as smtp:
        os.environ.update(smtp.env)
        try:
            assert deliver(engine, (daily,), now=T0 + timedelta(hours=1)).messages == 0
            assert deliver(engine, (daily,), now=datetime(2026, 11, 26, 0, 1)).messages == 1
        finally:
            for key in smtp.env:
                os.environ.pop(key, None)


def test_cli_subscribers_and_dry_run_digest(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'n.db'}"
    listed = kvwatch("--db", db, "subscribers", cwd=tmp_path)
    assert listed.returncode == 0 and "uni-office: email intl@uni.kvwatch.test; immediate" in listed.stdout
    assert "lawyer-slack: slack $KVWATCH_TEST_SLACK" in listed.stdout and "fields stay_duration" in listed.stdout
    dry = kvwatch("--db", db, "digest", "--subscriber", "uni-office", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "K-VISA FACT CHANGES" in dry.stdout and "关于K字签证延期办理的公告" in dry.stdout
    html = kvwatch("--db", db, "digest", "--dry-run", "--format", "html", cwd=tmp_path)
    assert "&lt;script&gt;" in html.stdout
    with session_scope(open_store(db)) as s:
        assert s.scalars(select(Delivery)).first() is None, "a dry run queued deliveries"


@pytest.mark.parametrize(("body", "entry", "key", "words"), [
    ('[[subscriber]]\nid = "a"\n', "[[subscriber]] id=a", "email", "at least one channel"),
    ('[[subscriber]]\nid = "a"\nemail = "nope"\n', "[[subscriber]] id=a", "email", "must be an address"),
    ('[[subscriber]]\nid = "a"\nslack = "https://hooks.slack.com/services/x"\n', "[[subscriber]] id=a", "slack", "NAME of an environment variable"),
    ('[[subscriber]]\nid = "a"\nemail = "a@b.cn"\ncadence = "hourly"\n', "[[subscriber]] id=a", "cadence", "valid: immediate, daily, weekly"),
    ('[[subscriber]]\nid = "a"\nemail = "a@b.cn"\ntimezone = "Mars/Base"\n', "[[subscriber]] id=a", "timezone", "unknown time zone"),
    ('[[subscriber]]\nid = "a"\nemail = "a@b.cn"\nfields = ["stay"]\n', "[[subscriber]] id=a", "fields", "unknown value 'stay'"),
    ('[[subscriber]]\nid = "a"\nemail = "a@b.cn"\n[[subscriber]]\nid = "a"\nemail = "c@d.cn"\n', "[[subscriber]] id=a", "id", "duplicate"),
])
def test_bad_subscribers_file_names_file_entry_and_key(tmp_path: Path, body: str, entry: str, key: str, words: str) -> None:
    path = tmp_path / "subscribers.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value).startswith(str(path)) and f"{entry}: key '{key}'" in str(info.value) and words in str(info.value)



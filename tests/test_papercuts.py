"""Issue-15 papercuts and the channels and commands that reach people: each against real parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier.channels.slack import retry_after
from notifier.channels.webhook import signature
from notifier.deliver import deliver
from notifier.subscribers import load
from store import alerts, pages
from store.db import open_store, session_scope
from store.models import Delivery
from tests.conftest import PAGES, kvwatch, write_watchlist
from tests.receivers import SlackReceiver


def _db_with_alerts(tmp_path: Path, count: int = 2) -> str:
    from crawler.watchlist import PageSpec

    db = f"sqlite:///{tmp_path / 'p.db'}"
    engine = open_store(db)
    with session_scope(engine) as s:
        pages.sync(s, [PageSpec(id="emb", url="https://us.china-embassy.gov.cn/eng/", name="Embassy")])
    with session_scope(engine) as s:
        for i in range(count):
            alerts.add(s, alerts.NewAlert(key=f"k{i}", page_id="emb", url="https://us.china-embassy.gov.cn/eng/", kind="fact", relevant=True,
                                          summary=f"K visa — stay per entry: 90 days → 180 days ({i})",
                                          facts=({"field": "stay_duration", "old": "P90D", "new": "P180D", "evidence": "每次停留不超过180日。"},)),
                       datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1))
    engine.dispose()
    write_watchlist(tmp_path, '[[page]]\nid = "emb"\nurl = "https://us.china-embassy.gov.cn/eng/"\n')
    return db


def test_apprise_urls_are_one_outbox_row_each_and_a_false_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db_with_alerts(tmp_path)
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "office"\napprise = ["KV_A_ONE", "KV_A_TWO"]\n', encoding="utf-8")
    with SlackReceiver((200, "ok", {})) as good, SlackReceiver((500, "down", {}), (200, "ok", {})) as flaky:
        monkeypatch.setenv("KV_A_ONE", good.url.replace("http://", "json://"))
        monkeypatch.setenv("KV_A_TWO", flaky.url.replace("http://", "json://"))
        subs = load(tmp_path / "subscribers.toml")
        engine = open_store(db)
        first = deliver(engine, subs)
        assert first.messages == 1 and len(first.failures) == 1 and "Apprise answered False" in first.failures[0]
        assert good.posts[0]["title"].startswith("kvwatch:") and "180 days" in good.posts[0]["message"]
        with session_scope(engine) as s:
            rows = {(d.channel, d.status) for d in s.scalars(select(Delivery))}
        assert rows == {("apprise:KV_A_ONE", "sent"), ("apprise:KV_A_TWO", "pending")}
        later = deliver(engine, subs, now=datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=2))
        assert later.messages == 1 and len(good.posts) == 1 and len(flaky.posts) == 2
        engine.dispose()


def test_json_webhook_posts_the_public_alert_objects_signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db_with_alerts(tmp_path)
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "sys"\nwebhook = "KV_HOOK"\nwebhook_secret = "KV_HOOK_KEY"\n', encoding="utf-8")
    with SlackReceiver((200, "ok", {})) as hook:
        env = {"KV_HOOK": hook.url, "KV_HOOK_KEY": "s3cret-key"}
        assert kvwatch("--db", db, "deliver", cwd=tmp_path, env=env).returncode == 0
        printed = json.loads(kvwatch("--db", db, "alerts", "--json", cwd=tmp_path).stdout)
    assert hook.posts == [printed]  # exactly what `kvwatch alerts --json` prints
    assert hook.headers[0]["x-kvwatch-signature"] == signature("s3cret-key", hook.bodies[0])


@pytest.mark.parametrize(("status", "body"), [(404, "no_service"), (410, "channel_is_archived"), (403, "invalid_token")])
def test_a_slack_webhook_that_is_gone_fails_for_good_and_says_so(tmp_path: Path, status: int, body: str) -> None:
    db = _db_with_alerts(tmp_path)
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "law"\nslack = "KV_SLACK"\n', encoding="utf-8")
    with SlackReceiver((status, body, {})) as slack:
        env = {"KV_SLACK": slack.url}
        first = kvwatch("--db", db, "-v", "deliver", cwd=tmp_path, env=env)
        assert "refused for good" in first.stderr and first.stderr.count("refused for good") == 1
        again = kvwatch("--db", db, "deliver", "--json", cwd=tmp_path, env=env)
        assert json.loads(again.stdout)["messages"] == 0 and len(slack.posts) == 1, "a permanent failure was retried"
        listed = kvwatch("--db", db, "subscribers", cwd=tmp_path, env=env).stdout
        assert "FAILED slack: failed for good after 1 attempts: slack to 127.0.0.1" in listed and body in listed
        doctor = kvwatch("--db", db, "doctor", cwd=tmp_path, env=env)
        assert doctor.returncode == 1 and "FAIL delivery law" in doctor.stdout
        notices = json.loads(kvwatch("--db", db, "alerts", "--json", "--kind", "health", cwd=tmp_path).stdout)
        assert [n["page_id"] for n in notices] == ["kvwatch-delivery"] and "law via slack fails for good" in notices[0]["summary"]


def test_retry_after_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 26, 8, 0, 0, tzinfo=UTC)
    assert retry_after("7", now) == 7.0
    assert retry_after("Thu, 26 Nov 2026 08:01:30 GMT", now) == 90.0
    assert retry_after("soon", now) is None and retry_after(None, now) is None


def test_notify_test_sends_a_marked_message_through_each_channel(tmp_path: Path) -> None:
    _db_with_alerts(tmp_path)
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "o"\nslack = "KV_SLACK"\napprise = ["KV_APP"]\n', encoding="utf-8")
    with SlackReceiver((200, "ok", {})) as slack, SlackReceiver((500, "down", {})) as app:
        done = kvwatch("notify-test", "--subscriber", "o", cwd=tmp_path, env={"KV_SLACK": slack.url, "KV_APP": app.url.replace("http://", "json://")})
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ok   slack") and "HTTP 200" in lines[0] and lines[1].startswith("FAIL apprise:KV_APP")
    assert "TEST MESSAGE" in json.dumps(slack.posts[0], ensure_ascii=False)


def test_kvwatch_test_shows_region_text_links_facts_and_writes_nothing(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_watchlist(tmp_path, f'[[page]]\nid = "my"\nurl = "{server.url("embassy-my-visa.html")}"\n')
    by_url = kvwatch("test", server.url("embassy-us-visa.html"), "--json", cwd=tmp_path)
    result = json.loads(by_url.stdout)
    assert result["outcome"] == "ok" and result["region"].startswith("mission family") and "Guidelines for K Visa" in result["title"]
    assert {"field": "stay_duration", "value": "P180D"}.items() <= {k: v for f in result["facts"] if f["field"] == "stay_duration" for k, v in f.items()}.items()
    by_id = kvwatch("test", "my", "--selector", "#News_Body_Txt_A", cwd=tmp_path)
    assert by_id.returncode == 0 and "# region: selector #News_Body_Txt_A" in by_id.stdout and "stay_duration: P180D" in by_id.stdout
    assert not list(tmp_path.glob("*.db")), "kvwatch test wrote a database"
    broken = kvwatch("test", server.url("nothing-here.html"), cwd=tmp_path)
    assert broken.returncode == 1 and "# outcome: error: HTTP 404" in broken.stdout


def test_export_csv_for_excel_has_a_bom_and_a_header_even_when_empty(tmp_path: Path) -> None:
    db = _db_with_alerts(tmp_path)
    raw = subprocess.run([sys.executable, "-m", "kvwatch", "--db", db, "export", "alerts", "--format", "csv", "--excel"], cwd=tmp_path, capture_output=True, check=True).stdout
    assert raw.startswith(b"\xef\xbb\xbfid,page_id,url,kind") and "stay per entry: 90 days → 180 days" in raw.decode("utf-8-sig")
    empty = subprocess.run([sys.executable, "-m", "kvwatch", "--db", db, "export", "facts", "--format", "csv"], cwd=tmp_path, capture_output=True, check=True).stdout
    assert empty.decode().strip() == "id,page_id,field,value,tier,snapshot_id,valid_from,valid_to,evidence"


def test_usage_errors_version_and_json_everywhere(tmp_path: Path, server) -> None:  # type: ignore[no-untyped-def]
    db = _db_with_alerts(tmp_path)
    bad = kvwatch("--db", db, "alerts", "--since", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == "kvwatch: 'yesterday' is not a date or time (like 2026-11-25 or 2026-11-25T10:00Z)"
    assert kvwatch("--version", cwd=tmp_path).stdout.startswith("kvwatch, version ")
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "a"\nemail = "a@kvwatch.test"\n', encoding="utf-8")
    assert kvwatch("--db", db, "digest", cwd=tmp_path).returncode == 0  # no --dry-run needed: digest never sends
    write_watchlist(tmp_path, f'[[page]]\nid = "my"\nurl = "{server.url("embassy-my-visa.html")}"\n')
    crawled = json.loads(kvwatch("--db", db, "crawl", "--json", cwd=tmp_path).stdout)
    assert crawled["outcomes"]["ok"] >= 1 and crawled["started_at"].endswith("Z")
    for args in (["history", "my"], ["history", "my", "--attempts"], ["show", "my"], ["subscribers"], ["pages"], ["doctor"]):
        done = kvwatch("--db", db, *args, "--json", cwd=tmp_path)
        data = json.loads(done.stdout)
        stamps = [v for row in (data if isinstance(data, list) else [data]) for k, v in row.items() if k.endswith(("_at", "_seen", "last_good", "last_change")) and v]
        assert all(str(v).endswith("Z") for v in stamps), (args, stamps)
    assert json.loads(kvwatch("--db", db, "run", "--json", cwd=tmp_path).stdout)["crawl"]["pages"] == 1


def test_files_fall_back_to_the_users_config_and_data_directories(tmp_path: Path) -> None:
    config, data, work = tmp_path / "config", tmp_path / "data", tmp_path / "elsewhere"
    (config / "kvwatch").mkdir(parents=True)
    work.mkdir()
    write_watchlist(config / "kvwatch", '[[page]]\nid = "p"\nurl = "http://127.0.0.1:9/p"\n')
    env = {"XDG_CONFIG_HOME": str(config), "XDG_DATA_HOME": str(data), "KVWATCH_WATCHLIST": "", "KVWATCH_SUBSCRIBERS": ""}
    done = kvwatch("doctor", cwd=work, env=env)
    files = next(line for line in done.stdout.splitlines() if line.split()[1] == "files")
    assert f"watchlist {config / 'kvwatch' / 'watchlist.toml'} (user configuration directory)" in files
    assert f"{data / 'kvwatch' / 'kvwatch.db'} (user data directory)" in files
    assert "ok   watchlist" in done.stdout


def test_logs_say_their_time_zone_and_fill_subscriber_and_channel(tmp_path: Path) -> None:
    db = _db_with_alerts(tmp_path)
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "law"\nslack = "KV_SLACK"\n', encoding="utf-8")
    with SlackReceiver((500, "down", {})) as slack:
        done = kvwatch("--db", db, "--log-json", "deliver", cwd=tmp_path, env={"KV_SLACK": slack.url})
    record = json.loads(done.stderr.strip().splitlines()[-1])
    assert record["time"].endswith("Z") and record["subscriber"] == "law" and record["channel"] == "slack"


def test_help_imports_neither_sqlalchemy_nor_alembic(tmp_path: Path) -> None:
    traced = subprocess.run([sys.executable, "-X", "importtime", "-m", "kvwatch", "--help"], cwd=tmp_path, capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip() for line in traced.stderr.splitlines() if "|" in line}
    assert not {"sqlalchemy", "alembic", "scrapy", "cn2an", "lxml"} & imported


def test_the_pure_python_diff_fallback_gives_the_same_diffs(monkeypatch: pytest.MonkeyPatch) -> None:
    import store.diff

    pairs = [("K字签证停留期180日，可多次入境。", "K字签证停留期90日，可一次入境。"), ("Number of entries: multiple.", "Number of entries: single."),
             ("一\n停留期90日。\n二\n三", "一\n停留期180日。\n二\n四\n五")]
    compiled = [store.diff.diff(a, b).ops for a, b in pairs]
    monkeypatch.setattr(store.diff, "_fast", None)  # as where the compiled wheel cannot be installed
    assert [store.diff.diff(a, b).ops for a, b in pairs] == compiled


def test_a_gbk_page_behind_a_latin1_header_reads_as_chinese(server, tmp_path: Path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from kvwatch.fixture_server import Route

    server.route("my.html", Route(200, (PAGES / "embassy-my-visa.html").read_bytes(), {"Content-Type": "text/html; charset=ISO-8859-1"}))
    write_watchlist(tmp_path, f'[[page]]\nid = "my"\nurl = "{server.url("my.html")}"\n')
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    shown = json.loads(kvwatch("--db", sqlite_url, "show", "my", "--json", cwd=tmp_path).stdout)
    assert "每次停留不超过一百八十日" in shown["text"]


def test_serve_passes_every_global_option_to_its_children() -> None:
    from kvwatch.daemon import DaemonSettings

    settings = DaemonSettings("postgresql+psycopg://u:pw@127.0.0.1/x", "w.toml", "s.toml", 1.0, 0, True, "INFO")
    command, env = settings.child_command("crawl")
    assert command[3:] == ["--watchlist", "w.toml", "--subscribers", "s.toml", "--log-json", "--log-level", "INFO", "crawl"]
    assert env["KVWATCH_DB"] == settings.db_url and not any("pw" in part for part in command)
    assert os.environ.get("KVWATCH_DB") != settings.db_url  # the child's environment, not ours


def test_the_lock_file_pins_every_dependency_with_hashes() -> None:
    import re
    import tomllib

    from tests.conftest import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {re.split(r"[<>=\[ ]", dep)[0].lower().replace("_", "-") for dep in project["dependencies"] + project["optional-dependencies"]["test"]}
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    assert wanted <= pinned, wanted - pinned
    blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", lock, flags=re.M)[1:]  # one block per pinned package
    assert len(blocks) == len(pinned) and all("--hash=sha256:" in block for block in blocks)


def test_doctor_warns_when_smtp_would_send_a_password_in_clear_or_cannot_log_in(tmp_path: Path) -> None:
    from tests.receivers import SmtpServer

    db = _db_with_alerts(tmp_path)
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "a"\nemail = "a@kvwatch.test"\n', encoding="utf-8")
    with SmtpServer() as smtp:
        clear = kvwatch("--db", db, "doctor", cwd=tmp_path, env={**smtp.env, "KVWATCH_SMTP_USER": "kv", "KVWATCH_SMTP_PASSWORD": "pw"})
        plain = kvwatch("--db", db, "doctor", cwd=tmp_path, env=smtp.env)
    smtp_line = next(line for line in clear.stdout.splitlines() if line.split()[1] == "smtp")
    assert smtp_line.startswith("WARN") and "password would go in clear" in smtp_line and clear.returncode == 0
    assert next(line for line in plain.stdout.splitlines() if line.split()[1] == "smtp").startswith("ok ")

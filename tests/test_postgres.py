"""The whole pipeline on a real PostgreSQL server (skipped, with the reason, when none answers)."""

from __future__ import annotations

import json
from pathlib import Path

from kvwatch.fixture_server import FixtureServer, Route
from tests.conftest import PAGES, kvwatch, write_watchlist
from tests.receivers import SmtpServer


def test_crawl_alerts_facts_delivery_export_and_prune_on_postgres(server: FixtureServer, tmp_path: Path, pg_url: str) -> None:
    write_watchlist(tmp_path, f'[[page]]\nid = "embassy-us-visa"\nurl = "{server.url("embassy-us-visa.html")}"\ntags = {{ tier = "mission" }}\n')
    server.route("eng/lsfw/zj/202510/P020251009555444333222.pdf", Route(200, (PAGES / "embassy-visa-guide-pdf.pdf").read_bytes(), {"Content-Type": "application/pdf"}))
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "a"\nemail = "a@kvwatch.test"\n', encoding="utf-8")
    with SmtpServer() as smtp:
        first = kvwatch("--db", pg_url, "run", cwd=tmp_path, env=smtp.env)
        assert first.returncode == 0, first.stderr
        changed = (PAGES / "embassy-us-visa.html").read_bytes().replace(b"no more than 180 days", b"no more than 90 days")
        server.route("embassy-us-visa.html", Route(200, changed, {"Content-Type": "text/html"}))
        second = kvwatch("--db", pg_url, "run", cwd=tmp_path, env=smtp.env)
        assert second.returncode == 0, second.stderr
    assert len(smtp.inbox.messages) == 2
    assert "180 days → 90 days" in smtp.inbox.messages[1]["Subject"]
    alerts = json.loads(kvwatch("--db", pg_url, "alerts", "--json", cwd=tmp_path).stdout)
    assert [a["kind"] for a in alerts] == ["fact", "fact", "content", "fact"]
    assert alerts[-1]["facts"] == [{"field": "stay_duration", "old": "P180D", "new": "P90D"}]
    facts = json.loads(kvwatch("--db", pg_url, "facts", "--json", "--field", "stay_duration", cwd=tmp_path).stdout)
    assert sorted(f["value"] for f in facts["facts"]) == ["P180D", "P90D"]  # the linked PDF still says 180
    assert facts["disagreements"]["stay_duration"]["P90D"] == ["embassy-us-visa"]
    assert json.loads(kvwatch("--db", pg_url, "export", "snapshots", "--page", "embassy-us-visa", cwd=tmp_path).stdout)[1]["text"].count("90 days") == 1
    assert kvwatch("--db", pg_url, "prune", "--fetches-older-than", "0", "--raw-older-than", "0", cwd=tmp_path).stdout.strip() == "pruned 2 fetch attempts and 1 raw bodies"

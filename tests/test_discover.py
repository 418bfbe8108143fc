"""Discovery of missions (issue 13), through Scrapy against a small world of missions served on
loopback (tests/missions_site.py) through the fixture server as the crawl's proxy; and the watchlist's
`include`."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from crawler.watchlist import load
from kvwatch.fixture_server import FixtureServer
from store.errors import ConfigError
from tests.conftest import PAGES, kvwatch, write_watchlist
from tests.missions_site import DETAIL_STYLES, INDEX, MISSIONS, Site, serve


def discover(tmp_path: Path, server: FixtureServer, *args: str) -> tuple[int, str, str]:
    done = kvwatch("discover", "missions", "--index", INDEX, *args, cwd=tmp_path, env={"http_proxy": server.base}, timeout=180)
    return done.returncode, done.stdout, done.stderr


def entries(path: Path) -> dict[str, dict]:
    return {p["id"]: p for p in tomllib.loads(path.read_text(encoding="utf-8"))["page"]}


@pytest.fixture
def world(tmp_path: Path) -> FixtureServer:
    write_watchlist(tmp_path, '[[page]]\nid = "gov"\nurl = "http://127.0.0.1:9/gov.html"\n')
    with FixtureServer(PAGES) as server:
        serve(server, per_page=1)  # every list paginated: index.shtml, index_1.shtml…
        yield server


def test_discovery_finds_each_missions_visa_section_per_language_and_its_k_pages(tmp_path: Path, world: FixtureServer) -> None:
    code, out, err = discover(tmp_path, world)
    assert code == 0, err
    written = tmp_path / "watchlist.d" / "missions.toml"
    found = entries(written)
    assert set(found) >= {
        "mission-ke-embassy-visa-zh", "mission-ke-embassy-visa-en",   # both language trees of the Kenyan embassy
        "mission-ng-embassy-visa-en",                                   # the second page of the Africa list
        "mission-us-losangeles-visa-zh",                                # a consulate whose country comes from its address
    }
    k_pages = {i: p for i, p in found.items() if "-k-" in i}
    assert {p["url"] for p in k_pages.values()} == {"http://ke.china-embassy.gov.cn/eng/lsfw/202510/t20251002_1.htm",
                                                    "http://losangeles.china-consulate.gov.cn/qz/P020251001.pdf"}
    visa = found["mission-ke-embassy-visa-en"]
    assert visa["kind"] == "listing" and visa["url"] == "http://ke.china-embassy.gov.cn/eng/lsfw/"
    assert visa["tags"] == {"agency": "mission", "country": "ke", "city": "embassy", "language": "en", "kind": "embassy"}
    assert found["mission-us-losangeles-visa-zh"]["tags"]["kind"] == "consulate-general"
    text = written.read_text(encoding="utf-8")
    assert "# found: http://www.fmprc.gov.cn/web/zwjg_674741/zwsg_674743/fz_674747/202501/" in text  # how each entry was found
    assert "no consular/visa section or K-visa page found" in text  # the Polish embassy: read, nothing to watch
    assert "missions: 3 added, 0 removed; pages: 6 added" in out  # Poland: read, but nothing to watch
    # the main watchlist includes the generated file, validated like the rest
    main = tmp_path / "watchlist.toml"
    main.write_text('include = ["watchlist.d/*.toml"]\n' + main.read_text(encoding="utf-8"), encoding="utf-8")
    watchlist = load(tmp_path / "watchlist.toml")
    assert {p.id for p in watchlist.pages} == {"gov", *found}
    assert watchlist.page("mission-ke-embassy-visa-en").kind == "listing"


def test_one_country_only(tmp_path: Path, world: FixtureServer) -> None:
    code, out, err = discover(tmp_path, world, "--country", "ke")
    assert code == 0, err
    assert {i.split("-")[1] for i in entries(tmp_path / "watchlist.d" / "missions.toml")} == {"ke"}


def test_a_rerun_reports_added_removed_and_moved_and_dry_run_writes_nothing(tmp_path: Path, world: FixtureServer) -> None:
    assert discover(tmp_path, world)[0] == 0
    written = tmp_path / "watchlist.d" / "missions.toml"
    before = written.read_text(encoding="utf-8")
    kenya, nigeria, la, poland = MISSIONS
    moved = replace(kenya, section="lsfw2", k_pages=(("/eng/lsfw2/202510/t20251002_1.htm", "Notice on the K Visa"),))
    opened = Site("saopaulo.china-consulate.gov.cn", "中华人民共和国驻圣保罗总领事馆", "zwzlg_674757/", "Rua Estados Unidos 170, São Paulo, Brazil", trees=(), section="qz")
    world.routes.clear()
    serve(world, (moved, la, poland, opened))  # Nigeria's embassy no longer listed; a consulate opened; Kenya's section moved
    code, out, _ = discover(tmp_path, world, "--dry-run")
    assert code == 0 and written.read_text(encoding="utf-8") == before
    assert "+ mission mission-br-saopaulo" in out and "- mission mission-ng-embassy (closed, or no longer listed)" in out
    assert "~ mission-ke-embassy-visa-en  http://ke.china-embassy.gov.cn/eng/lsfw/ → http://ke.china-embassy.gov.cn/eng/lsfw2/" in out
    assert "(dry run:" in out
    assert discover(tmp_path, world)[0] == 0
    after = entries(written)
    assert "mission-br-saopaulo-visa-zh" in after and not any(i.startswith("mission-ng-") for i in after)


def test_bad_arguments_are_one_line_errors(tmp_path: Path, world: FixtureServer) -> None:
    done = kvwatch("discover", "missions", "--region", "mars", cwd=tmp_path)
    assert done.returncode == 2 and "unknown region 'mars' (valid regions: asia, africa" in done.stderr
    done = kvwatch("discover", "missions", "--country", "kenya", cwd=tmp_path)
    assert done.returncode == 2 and "two-letter" in done.stderr


def test_included_files_share_validation_and_ids_are_unique_across_files(tmp_path: Path) -> None:
    (tmp_path / "watchlist.d").mkdir()
    (tmp_path / "watchlist.d" / "a.toml").write_text('[[page]]\nid = "dup"\nurl = "http://127.0.0.1:9/a"\n', encoding="utf-8")
    path = tmp_path / "watchlist.toml"
    path.write_text('include = ["watchlist.d/*.toml"]\n[[page]]\nid = "dup"\nurl = "http://127.0.0.1:9/b"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a\.toml.*duplicate id 'dup' \(also in .*watchlist\.toml\)"):
        load(path)
    (tmp_path / "watchlist.d" / "a.toml").write_text('[crawl]\ndelay = 1\n[[page]]\nid = "x"\nurl = "http://127.0.0.1:9/a"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a\.toml.*unknown key \(valid keys: page\)"):
        load(path)
    (tmp_path / "watchlist.d" / "a.toml").write_text('[[page]]\nid = "x"\nurl = "ftp://nope"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a\.toml.*\[\[page\]\] id=x.*url"):
        load(path)


def test_subscribers_and_their_digests_say_which_missions_they_follow(tmp_path: Path, world: FixtureServer) -> None:
    assert discover(tmp_path, world)[0] == 0
    main = tmp_path / "watchlist.toml"
    main.write_text('include = ["watchlist.d/*.toml"]\n' + main.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "subscribers.toml").write_text(
        '[[subscriber]]\nid = "nairobi"\nemail = "adviser@kvwatch.test"\ntags = { country = "ke" }\n'
        '[[subscriber]]\nid = "everyone"\nemail = "all@kvwatch.test"\n', encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'kv.db'}"
    assert kvwatch("--db", db, "pages", cwd=tmp_path).returncode == 0  # syncs the watchlist into the store
    listed = kvwatch("--db", db, "subscribers", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    block = listed.stdout.split("everyone:")[0] if listed.stdout.index("nairobi:") < listed.stdout.index("everyone:") else listed.stdout.split("nairobi:")[1]
    assert "follows 1 missions: ke embassy" in block
    assert "follows" not in listed.stdout.split("everyone:")[1].split("nairobi:")[0]


@pytest.mark.parametrize("detail", DETAIL_STYLES)
def test_the_detail_pages_layout_does_not_change_what_is_found(tmp_path: Path, detail: str) -> None:
    """网址 on its line, in a table's two cells, on the line after its colon, or only as a link's target."""
    write_watchlist(tmp_path, '[[page]]\nid = "gov"\nurl = "http://127.0.0.1:9/gov.html"\n')
    with FixtureServer(PAGES) as server:
        serve(server, detail=detail)
        code, _, err = discover(tmp_path, server, "--region", "africa")
    assert code == 0, err
    assert set(entries(tmp_path / "watchlist.d" / "missions.toml")) == {
        "mission-ke-embassy-visa-zh", "mission-ke-embassy-visa-en", "mission-ke-embassy-k-d01af2-en", "mission-ng-embassy-visa-en"}

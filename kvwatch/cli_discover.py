"""`kvwatch discover missions`: find China's missions and their visa pages, write them as a reviewable
watchlist file, and report what a re-run adds, removes or moves."""

from __future__ import annotations

from pathlib import Path

import click

from kvwatch.cli import Context, fail_cleanly, main
from store.errors import UsageError


@main.group()
def discover() -> None:
    """Find pages to watch (generated, reviewable watchlist files)."""


@discover.command("missions")
@click.option("--region", "regions", multiple=True, metavar="R",
              help="Only this list (repeatable): asia, africa, europe, west-asia-north-africa, eastern-europe-central-asia, americas-oceania, "
                   "consulates, organisations.")
@click.option("--country", metavar="CC", default="", help="Only missions in this country (ISO 3166 code, e.g. ke).")
@click.option("--out", "out", metavar="FILE", default="watchlist.d/missions.toml", show_default=True, help="The file to write.")
@click.option("--dry-run", is_flag=True, help="Print what would be added, removed and moved; write nothing.")
@click.option("--index", metavar="URL", help="The list of missions (default: the foreign ministry's; a mirror such as www.mfa.gov.cn works too).")
@click.pass_obj
@fail_cleanly
def missions_cmd(obj: Context, regions: tuple[str, ...], country: str, out: str, dry_run: bool, index: str | None) -> None:
    """Discover embassies and consulates and their consular/visa pages (bounded, robots.txt obeyed)."""
    from crawler.discover import DEFAULT_INDEX, LISTS, compare, render_toml, run
    from crawler.fetch import scrapy_settings
    from crawler.watchlist import CrawlSettings
    from store.configfile import read_toml
    from store.errors import ConfigError

    unknown = [r for r in regions if r not in LISTS]
    if unknown:
        raise UsageError(f"unknown region {unknown[0]!r} (valid regions: {', '.join(LISTS)})")
    if country and not (len(country) == 2 and country.isalpha()):
        raise UsageError(f"--country takes a two-letter ISO 3166 code such as ke, not {country!r}")
    try:
        crawl = obj.watchlist().crawl
    except ConfigError:
        crawl = CrawlSettings()
    settings = {**scrapy_settings(crawl, "", obj.log_level), "ITEM_PIPELINES": {}, "LOG_INSTALL_ROOT_HANDLER": False}
    source = index or DEFAULT_INDEX
    sites = run(source, regions, country, settings)
    path = Path(out)
    old: dict[str, str] = {}
    if path.exists():
        old = {str(p.get("id")): str(p.get("url")) for p in read_toml(str(path)).get("page", []) if isinstance(p, dict)}
    new = {page.id: page.url for site in sites for page in site.pages}
    if regions or country:  # a partial run says nothing about the missions it did not look at
        old = {i: u for i, u in old.items() if i in new or any(i.startswith(f"mission-{s.mission.country or 'xx'}-{s.mission.city}-") for s in sites)}
    report = compare(old, new)
    click.echo(f"{len(sites)} missions read, {sum(bool(s.pages) for s in sites)} with pages to watch, {len(new)} pages")
    for line in report.lines():
        click.echo(line)
    if dry_run:
        click.echo(f"(dry run: {path} not written)")
        return
    if not sites:
        raise UsageError(f"no missions found at {source}: {path} left as it was")
    path.parent.mkdir(parents=True, exist_ok=True)
    if regions or country:  # keep the other missions' entries: rewrite only the ones looked at
        kept = _kept_entries(path, set(old) | set(new)) if path.exists() else ""
        path.write_text(render_toml(sites, source) + kept, encoding="utf-8")
    else:
        path.write_text(render_toml(sites, source), encoding="utf-8")
    click.echo(f"wrote {path}; the watchlist includes it with include = [\"{path.parent.name}/*.toml\"]")


def _kept_entries(path: Path, replaced: set[str]) -> str:
    """The entries (with their comments) of `path` that a partial run did not replace."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# found:") and current:
            blocks.append(current)
            current = []
        current.append(line)
    blocks.append(current)
    kept = []
    for block in blocks:
        ids = [line.split('"')[1] for line in block if line.startswith("id = ")]
        if ids and ids[0] not in replaced:
            kept.append("\n".join(line for line in block if not line.startswith("# ---") and not line.startswith("#     ")))
    return ("\n" + "\n\n".join(kept) + "\n") if kept else ""

"""Golden before/after pairs: noise never alerts; substantive edits alert with the expected diff."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crawler.analyse import Version, comparable, compare, relevance
from crawler.fetch import read_body
from crawler.watchlist import PageSpec
from tests.conftest import FIXTURES

PAIRS = sorted((FIXTURES / "pairs").iterdir())


def _version(path: Path, base: str) -> tuple[Version, str]:
    url = f"http://127.0.0.1:8000/{base}.html"
    spec = PageSpec(id=base, url=url, kind="listing" if base.endswith("-news") else "auto")
    page, _ = read_body(spec, url, path.read_bytes(), "text/html")
    return Version(comparable(page.text), tuple((link.text, link.url) for link in page.links)), page.title


@pytest.mark.parametrize("folder", PAIRS, ids=lambda p: p.name)
def test_pair(folder: Path) -> None:
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    (before, _), (after, title) = _version(folder / "before.html", expected["base"]), _version(folder / "after.html", expected["base"])
    change = compare(before, after, [before])
    assert change.substantive is expected["alert"], (change.new_lines, change.removed_lines, change.new_links)
    if not expected["alert"]:
        assert not change.diff.changed, f"noise leaked into the compared text: {change.diff.excerpt()}"
        return
    kind = "new_link" if change.new_links else "content"
    got = {"diff": change.diff.excerpt(), "new_links": [list(link) for link in change.new_links],
           "relevant": relevance(title, before, after, change)}
    if os.environ.get("KVWATCH_UPDATE_GOLDENS"):
        (folder / "expected.json").write_text(json.dumps({**expected, **got}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        expected = {**expected, **got}
    assert kind == expected["kind"]
    assert got == {k: expected[k] for k in got}, "diff differs from the golden (KVWATCH_UPDATE_GOLDENS=1 to refresh, then review)"


def test_pairs_cover_every_noise_kind_and_edit_kind() -> None:
    names = {p.name for p in PAIRS}
    for kind in ("date-header", "counter", "related-rotation", "share-widget-ids", "script-tokens", "cms-rerender", "copyright-year", "prev-next-links"):
        assert any(n.startswith(f"noise-{kind}") for n in names), kind
    for kind in ("number-in-sentence", "added-paragraph", "removed-sentence", "new-listing-link", "english-page"):
        assert f"edit-{kind}" in names


def test_committed_pairs_match_their_generator() -> None:
    """The pair files are generated from the fixture pages; a changed base page must be regenerated."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pairs", FIXTURES / "make_pairs.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert {p.name for p in PAIRS} == set(module.PAIRS)
    for name in module.PAIRS:
        before, after = module.build(name)
        assert ((FIXTURES / "pairs" / name / "before.html").read_bytes(), (FIXTURES / "pairs" / name / "after.html").read_bytes()) == (before, after), name
        assert json.loads((FIXTURES / "pairs" / name / "expected.json").read_text(encoding="utf-8"))["alert"] is module.PAIRS[name][2]

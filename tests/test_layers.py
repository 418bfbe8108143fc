"""The layer rules: store imports neither crawler nor notifier; crawler never imports notifier;
notifier never imports crawler; only the command line (kvwatch/) sits on all three."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

FORBIDDEN = {"store": {"crawler", "notifier", "kvwatch"}, "crawler": {"notifier", "kvwatch"}, "notifier": {"crawler", "kvwatch"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    offenders = {str(p.relative_to(ROOT)): _imports(p) & FORBIDDEN[layer] for p in (ROOT / layer).rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}

"""Main-text candidates side by side: kvwatch's region chooser, trafilatura, readability-lxml and jusText,
on the real pages of ../shared/real-pages (is a labelled change seen, is noise quiet, on text alone)
and on kvwatch's Chinese fixtures (recall and precision against the golden texts, and whether the
text survives a template re-render). The other extractors are not kvwatch dependencies:

    python3 -m venv /tmp/cand && /tmp/cand/bin/pip install -e . trafilatura readability-lxml justext lxml_html_clean
    /tmp/cand/bin/python benchmarks/main_text_candidates.py
"""
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REAL = ROOT.parent / "shared" / "real-pages"
FIXTURES = ROOT / "fixtures"
URL = "http://127.0.0.1/page.html"


def main() -> None:
    try:
        import justext
        import trafilatura
        from readability import Document as Readability
    except ImportError as exc:
        sys.exit(f"needs the candidates installed (see the docstring): {exc}")
    from lxml import html as lhtml

    from crawler.charset import decode
    from crawler.noise import clean_line
    from crawler.normalize import normalize_html, normalize_line
    from tests.variants import variants

    def lines(text: str) -> list[str]:
        out = (clean_line(normalize_line(line)) for line in text.splitlines())
        return [line for line in out if line]

    def ours(page: str) -> list[str]:
        text = normalize_html(page, URL).text
        return lines(text.split("\n", 1)[1] if "\n" in text else text)  # the body, without the title line

    def readability(page: str) -> list[str]:
        tree = lhtml.fromstring(Readability(page).summary(html_partial=True))
        for el in tree.iter("br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "td"):
            el.tail = "\n" + (el.tail or "")
        return lines(tree.text_content())

    tools: dict[str, Callable[[str], list[str]]] = {
        "kvwatch": ours,
        "trafilatura": lambda page: lines(trafilatura.extract(page, include_tables=True, favor_recall=True) or ""),
        "readability-lxml": readability,
        "jusText": lambda page: lines("\n".join(p.text for p in justext.justext(page.encode(), justext.get_stoplist("English")) if not p.is_boilerplate)),
    }

    def run(tool: Callable[[str], list[str]], body: bytes) -> list[str] | None:
        try:
            return tool(decode(body, "text/html")[0])
        except Exception:  # noqa: BLE001 - a candidate that fails on a page scores that page as failed
            return None

    pairs = [p for p in json.loads((REAL / "labels.json").read_text(encoding="utf-8"))["pairs"] if not p["ambiguous"]]
    print(f"real pages ({REAL}): unambiguous pairs decided right on text alone (change ⇔ lines differ)")
    for name, tool in tools.items():
        right = errors = 0
        for pair in pairs:
            before, after = run(tool, (REAL / pair["before"]).read_bytes()), run(tool, (REAL / pair["after"]).read_bytes())
            ignore = (pair.get("page_options") or {}).get("ignore", [])
            kept = lambda found, ignore=ignore: Counter(x for x in found or [] if not any(re.search(i, x) for i in ignore))  # noqa: E731
            errors += before is None or after is None
            right += (kept(before) != kept(after)) == (pair["label"] == "change")
        print(f"  {name:18} {right}/{len(pairs)} (failed to read {errors})")

    pages = sorted(p for p in (FIXTURES / "pages").glob("*.html") if p.stem not in ("challenge-412", "maintenance"))
    print("Chinese fixtures: golden main text recall / precision (by characters), and the same text after the 'all' re-render")
    for name, tool in tools.items():
        recall = precision = stable = 0.0
        for path in pages:
            golden = [x for x in (FIXTURES / "expected" / f"{path.stem}.txt").read_text(encoding="utf-8").splitlines() if not x.startswith("[link]")][1:]
            want = Counter(golden)
            got = Counter(run(tool, path.read_bytes()) or [])
            common = sum(len(x) * min(n, want[x]) for x, n in got.items())
            recall += common / max(sum(len(x) * n for x, n in want.items()), 1)
            precision += common / max(sum(len(x) * n for x, n in got.items()), 1)
            stable += Counter(run(tool, variants(path.read_bytes(), "\n".join(golden))["all"]) or []) == got
        print(f"  {name:18} recall {recall / len(pages):.2f}  precision {precision / len(pages):.2f}  same after re-render {int(stable)}/{len(pages)}")


if __name__ == "__main__":
    main()

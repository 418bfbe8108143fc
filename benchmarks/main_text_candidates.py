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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
try:
    import justext
    import trafilatura
    from readability import Document as Readability
except ImportError as exc:
    sys.exit(f"needs the candidates installed (see the docstring): {exc}")
from lxml import html as lhtml
from crawler.normalize import normalize_html, normalize_line
from crawler.noise import clean_line
from crawler.charset import decode
from tests.variants import variants

R = ROOT.parent / "shared" / "real-pages"
F = ROOT / "fixtures"

def lines(text):
    out = (clean_line(normalize_line(l)) for l in text.splitlines())
    return [l for l in out if l]

def ours(h, url): 
    p = normalize_html(h, url); return lines(p.text.split("\n",1)[1] if "\n" in p.text else p.text)
def traf(h, url): return lines(trafilatura.extract(h, include_comments=False, include_tables=True, favor_recall=True) or "")
def readab(h, url):
    doc = Readability(h); summary = doc.summary(html_partial=True)
    tree = lhtml.fromstring(summary)
    for br in tree.iter("br"): br.tail = "\n" + (br.tail or "")
    for el in tree.iter("p","div","li","tr","h1","h2","h3","h4","td"): el.tail = "\n" + (el.tail or "")
    return lines(tree.text_content())
def jt(h, url):
    paras = justext.justext(h.encode(), justext.get_stoplist("English"))
    return lines("\n".join(p.text for p in paras if not p.is_boilerplate))
TOOLS = {"kvwatch": ours, "trafilatura": traf, "readability-lxml": readab, "jusText": jt}

def safe(fn, h, url):
    try: return fn(h, url)
    except Exception as e: return None

labels = json.loads((R/"labels.json").read_text())["pairs"]
print("real pages: unambiguous pairs decided right on text alone (change ⇔ lines differ)")
for name, fn in TOOLS.items():
    right = 0; n = 0; errors = 0
    for p in labels:
        if p["ambiguous"]: continue
        n += 1
        b = safe(fn, decode((R/p["before"]).read_bytes(), "text/html")[0], "http://127.0.0.1/x")
        a = safe(fn, decode((R/p["after"]).read_bytes(), "text/html")[0], "http://127.0.0.1/x")
        if b is None or a is None: errors += 1; alert = a != b and (a is None) != (b is None)
        else:
            ign = (p.get("page_options") or {}).get("ignore", [])
            f = lambda ls: Counter(l for l in ls if not any(re.search(x, l) for x in ign))
            alert = f(a) != f(b)
        right += alert == (p["label"] == "change")
    print(f"  {name:18} {right}/{n} (errors {errors})")

print("Chinese fixtures: golden main text recall / precision (by characters), and identical under the 'all' re-render")
pages = sorted(p for p in (F/"pages").glob("*.html") if p.stem not in ("challenge-412","maintenance"))
for name, fn in TOOLS.items():
    rec = prec = stable = 0.0
    for path in pages:
        golden = [l for l in (F/"expected"/f"{path.stem}.txt").read_text().splitlines() if not l.startswith("[link]")]
        g = Counter(golden[1:]); gsize = sum(len(l)*n for l,n in g.items())
        html, _ = decode(path.read_bytes(), "text/html")
        got = safe(fn, html, "http://127.0.0.1/x") or []
        c = Counter(got); csize = sum(len(l)*n for l,n in c.items()) or 1
        common = sum(len(l)*min(n, g[l]) for l,n in c.items() if l in g)
        rec += common/gsize; prec += common/csize
        v = variants(path.read_bytes(), "\n".join(golden[1:]))["all"]
        got2 = safe(fn, decode(v, "text/html")[0], "http://127.0.0.1/x") or []
        stable += got2 == got
    k = len(pages)
    print(f"  {name:18} recall {rec/k:.2f}  precision {prec/k:.2f}  same after re-render {int(stable)}/{k}")

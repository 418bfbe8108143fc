"""A small world of missions, modelled on the foreign ministry's list and the missions' own sites
(written for these tests; no real page's text): served by one loopback FixtureServer acting as the
crawl's HTTP proxy, so the real-looking host names are never resolved.

A mission is one line in MISSIONS; `serve(server, missions)` scripts every list, detail page, home,
language tree and consular section.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvwatch.fixture_server import FixtureServer, Route

FMPRC = "www.fmprc.gov.cn"
INDEX = f"http://{FMPRC}/web/zwjg_674741/"
HTML = {"Content-Type": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Site:
    host: str
    name: str                                  # as the ministry's detail page titles it
    list_path: str                             # the list it appears in
    address: str = ""
    name_en: str = ""
    trees: tuple[str, ...] = ("chn", "eng")    # language trees; () = the home is the only tree
    section: str = "lsfw"                      # the consular/visa section's folder; "" = none
    k_pages: tuple[tuple[str, str], ...] = ()  # (path, link text) listed in the section
    extra: dict[str, str] = field(default_factory=dict)


MISSIONS = (
    Site("ke.china-embassy.gov.cn", "中华人民共和国驻肯尼亚共和国大使馆", "zwsg_674743/fz_674747/", "内罗毕伍德兰兹路", "Embassy of the PRC in Kenya",
         k_pages=(("/eng/lsfw/202510/t20251002_1.htm", "Notice on the K Visa"),)),
    Site("ng.china-embassy.gov.cn", "中华人民共和国驻尼日利亚联邦共和国大使馆", "zwsg_674743/fz_674747/", "阿布贾", trees=("eng",), section="zgqz"),
    Site("losangeles.china-consulate.gov.cn", "中华人民共和国驻洛杉矶总领事馆", "zwzlg_674757/", "443 Shatto Place, Los Angeles, CA 90020, United States",
         trees=(), section="qz", k_pages=(("/qz/P020251001.pdf", "K字签证申请须知"),)),
    Site("pl.china-embassy.gov.cn", "中华人民共和国驻波兰共和国大使馆", "zwsg_674743/xo_674749/", "华沙", trees=("chn", "eng", "pol"), section=""),
)


def detail_path(site: Site, n: int) -> str:
    return f"/web/zwjg_674741/{site.list_path}202501/t20250101_{1000 + n}.shtml"


DETAIL_STYLES = ("lines", "table", "split", "link")  # how a detail page lays out its "label：value" facts


def serve(server: FixtureServer, missions: tuple[Site, ...] = MISSIONS, per_page: int = 1, detail: str = "lines") -> None:
    """Script every page of the world on `server` (lists paginated `per_page` missions a page; detail
    pages in one of DETAIL_STYLES)."""
    lists: dict[str, list[tuple[int, Site]]] = {}
    for n, site in enumerate(missions):
        lists.setdefault(site.list_path, []).append((n, site))
    for path, items in lists.items():
        pages = [items[i:i + per_page] for i in range(0, len(items), per_page)]
        for number, chunk in enumerate(pages):
            links = "".join(f'<li><a href="./202501/t20250101_{1000 + n}.shtml">{s.name}</a></li>' for n, s in chunk)
            pager = f"<script>createPageHTML({len(pages)}, {number}, \"index\", \"shtml\");</script>"
            name = "index.shtml" if number == 0 else f"index_{number}.shtml"
            server.route_host(FMPRC, f"/web/zwjg_674741/{path}{name}", Route(200, _page("驻外使领馆", f"<ul class=\"list\">{links}</ul>{pager}"), HTML))
    for n, site in enumerate(missions):
        pairs = [("网址", f"http://{site.host}/"), ("地址", site.address), ("电话", "00-000-0000")] + ([("英文名称", site.name_en)] if site.name_en else [])
        body = f"<h1>{site.name}</h1><div id=\"News_Body_Txt_A\">{_detail(pairs, detail)}</div>"
        server.route_host(FMPRC, detail_path(site, n), Route(200, _page(site.name, body), HTML))
        _serve_site(server, site)


def _detail(pairs: list[tuple[str, str]], style: str) -> str:
    if style == "table":  # label and value in two cells
        return "<table>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in pairs) + "</table>"
    if style == "split":  # the value on the line after the colon
        return "".join(f"<p>{k}：<br>{v}</p>" for k, v in pairs)
    if style == "link":  # 网址 only as a link's target
        return "".join(f'<p><a href="{v}">{k}</a></p>' if k == "网址" else f"<p>{k}：{v}</p>" for k, v in pairs)
    return "".join(f"<p>{k}：{v}</p>" for k, v in pairs)


def _serve_site(server: FixtureServer, site: Site) -> None:
    trees = site.trees or ("",)
    switcher = "".join(f'<a href="/{tree}/">{tree}</a>' for tree in site.trees)
    home = f"<div class=\"lang\">{switcher}</div>" + ("" if site.trees else _tree_body(site, ""))
    server.route_host(site.host, "/", Route(200, _page(site.name, home, lang="zh"), HTML))
    for tree in site.trees:
        server.route_host(site.host, f"/{tree}/", Route(200, _page(site.name, _tree_body(site, tree)), HTML))
    for tree in trees:
        if site.section:
            prefix = f"/{tree}" if tree else ""
            items = "".join(f'<li><a href="{path}">{text}</a></li>' for path, text in site.k_pages if path.startswith(prefix + "/"))
            server.route_host(site.host, f"{prefix}/{site.section}/", Route(200, _page("领事服务", f"<ul>{items}<li><a href=\"{prefix}/{site.section}/t1.htm\">护照办理</a></li></ul>"), HTML))


def _tree_body(site: Site, tree: str) -> str:
    prefix = f"/{tree}" if tree else ""
    label = {"chn": "领事服务", "eng": "Consular Services", "pol": "Usługi konsularne", "": "签证"}.get(tree, "Consular")
    section = f'<li><a href="{prefix}/{site.section}/">{label}</a></li>' if site.section else ""
    return f"<ul class=\"nav\"><li><a href=\"{prefix}/xwdt/\">新闻动态</a></li>{section}<li><a href=\"{prefix}/sgxx/\">使馆信息</a></li></ul>"


def _page(title: str, body: str, lang: str = "zh-CN") -> bytes:
    return f"<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>{body}</body></html>".encode()

"""Site families: where the main text, the title and the listing live on each kind of site.

A literal registry. A page's family is chosen by host; when the host is unknown (a mirror, a
proxy, a test server), the families are tried in order by their markup.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    hosts: tuple[str, ...]            # host suffixes
    content: tuple[str, ...]          # main-text selectors, first match wins
    listing: tuple[str, ...] = ()     # list-of-articles selectors
    title: tuple[str, ...] = ()       # title selectors (a meta selector reads its content)
    noise: tuple[str, ...] = ()       # removed before text and links are taken
    tier: str = "other"               # default source tier of its facts
    signature: tuple[str, ...] = ()   # markup only this family has: identifies it on any host


FAMILIES: dict[str, Family] = {
    "mission": Family(
        hosts=("china-embassy.gov.cn", "china-consulate.gov.cn", "china-embassy.org", "chinaembassy.org", "chinaconsulate.org"),
        content=("#News_Body_Txt_A", "div.News_Body_Text"),
        listing=("div.nbox_ul", "div.newsList", "ul.list_con"),
        title=("#News_Body_Title",),
        noise=("#News_Body_Time", "div.Top_Index_A", "#pages"),
        tier="mission",
        signature=("#News_Body_Txt_A",),
    ),
    "fmprc": Family(
        hosts=("fmprc.gov.cn", "mfa.gov.cn"),
        content=("#News_Body_Txt_A", "div.content_text"),
        listing=("div.rebox_news", "div.newsBd", "div.list1"),
        title=("#News_Body_Title",),
        tier="ministry",
    ),
    "gov.cn": Family(
        hosts=("www.gov.cn", "english.www.gov.cn"),
        content=("#UCAP-CONTENT", ".TRS_UEDITOR", ".pages_content"),
        listing=(".news_box .list", "div.list", "ul.listTxt"),
        title=("div.share-title", "h1#ti", "meta[name=ArticleTitle]"),
        noise=(".shuzi", "#myFlash", ".pages-date", ".pages_print", ".share", ".editor", "table.bd1 + .relevant",
               ".BreadcrumbNav", ".share-title", ".share-substr", ".footer_wrap"),
        tier="decree",
        signature=("#UCAP-CONTENT",),
    ),
    "nia": Family(
        hosts=("nia.gov.cn",),
        content=("div.content",),
        listing=("div.list_bd",),
        title=("meta[name=ArticleTitle]", "div.title"),
        tier="ministry",
    ),
    "visaforchina": Family(
        hosts=("visaforchina.cn",),
        content=("div.article-content", "div.notice-detail", "div.detail-content", "div.content"),
        listing=("ul.notice-list", "div.list-content"),
        title=("h1", "div.article-title"),
        tier="visa-centre",
    ),
}

# Words that, as a whole word of an element's class or id, mark chrome: share bars, font widgets,
# related lists, footers, navigation. Class names are split into words at '-', '_' and camelCase
# (see crawler.dom), so 'footer_wrap' and 'shareBar' match and 'no-sidebar' is guarded by size.
NOISE_CLASS_WORDS = (
    "share", "bdshare", "jiathis", "fontsize", "zoom", "related", "relate", "xgwz", "xglj", "footer",
    "copyright", "breadcrumb", "breadcrumbs", "crumb", "crumbs", "qrcode", "erweima", "weixin", "counter",
    "pageview", "pageviews", "sidebar", "topbar", "toolbar", "prevnext", "fanye", "nav", "navbar", "navigation",
    "menu", "social", "cookie", "cookies",
)


def family_for_host(host: str) -> str | None:
    """The family with the most specific host suffix matching `host` (www.nia.gov.cn is NIA's)."""
    host = host.lower()
    best: tuple[int, str] | None = None
    for name, family in FAMILIES.items():
        for suffix in family.hosts:
            if (host == suffix or host.endswith("." + suffix)) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), name)
    return best[1] if best else None


TIERS = ("decree", "qa", "ministry", "mission", "visa-centre", "other")


def tier_for(host: str, tags: dict[str, str]) -> str:
    """A page's source tier: its `tier` tag, else its site family's, else 'other' (blogs, wikis, rumours)."""
    if tags.get("tier"):
        return tags["tier"]
    name = family_for_host(host)
    return FAMILIES[name].tier if name else "other"

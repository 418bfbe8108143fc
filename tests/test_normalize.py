"""Normalization: every fixture page against its golden text, charsets, chrome, PDF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse

from crawler.fetch import read_body
from crawler.normalize import NoText, normalize_html, normalize_line
from crawler.pdf import normalize_pdf
from crawler.watchlist import PageSpec
from tests.conftest import FIXTURES, PAGES

GOLDEN = FIXTURES / "expected"
CONTENT_PAGES = sorted(p for p in PAGES.iterdir() if p.suffix in (".html", ".pdf") and p.stem not in ("challenge-412",))


def _normalized(path: Path) -> str:
    url = f"http://127.0.0.1:8000/{path.name}"
    response = HtmlResponse(url=url, body=path.read_bytes(), headers={"Content-Type": "text/html"})
    spec = PageSpec(id=path.stem, url=url, kind="listing" if path.stem.endswith("-news") else "auto")
    page, _ = read_body(spec, url, response.body, response.headers.get("Content-Type", b"").decode())
    links = "".join(f"\n[link] {link.text} <{link.url}>" for link in page.links)
    return page.text + links + "\n"


@pytest.mark.parametrize("path", CONTENT_PAGES, ids=lambda p: p.stem)
def test_fixture_page_matches_golden_text(path: Path) -> None:
    golden = GOLDEN / f"{path.stem}.txt"
    got = _normalized(path)
    if os.environ.get("KVWATCH_UPDATE_GOLDENS"):
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run with KVWATCH_UPDATE_GOLDENS=1 and review it"
    assert got == golden.read_text(encoding="utf-8")


def test_every_fixture_page_has_a_golden_and_no_golden_is_orphaned() -> None:
    assert {p.stem for p in CONTENT_PAGES} == {g.stem for g in GOLDEN.glob("*.txt")}


def test_gbk_page_decodes_from_meta_with_gbk_only_characters() -> None:
    page, encoding = read_body(PageSpec(id="x", url="http://127.0.0.1/x"), "http://127.0.0.1/x", (PAGES / "embassy-my-visa.html").read_bytes(), "text/html")
    assert encoding == "gb18030"
    assert "王喆" in page.text  # 喆 is in GBK but not in GB2312


@pytest.mark.parametrize("where", ["header", "undeclared"])
def test_gbk_without_meta(where: str) -> None:
    body = "<html><body><div id='News_Body_Txt_A'><p>K字签证每次停留不超过180日。</p></div></body></html>".encode("gbk")
    ctype = "text/html; charset=GBK" if where == "header" else "text/html"
    page, encoding = read_body(PageSpec(id="x", url="http://127.0.0.1/x"), "http://127.0.0.1/x", body, ctype)
    assert page.text == "K字签证每次停留不超过180日。"
    assert encoding == "gb18030"


def test_utf8_page_mislabelled_latin1_by_the_server() -> None:
    body = "<html><body><main><p>停留期九十日</p></main></body></html>".encode()
    page, encoding = read_body(PageSpec(id="x", url="http://127.0.0.1/x"), "http://127.0.0.1/x", body, "text/html; charset=ISO-8859-1")
    assert (page.text, encoding) == ("停留期九十日", "utf-8")


def test_fullwidth_digits_and_letters_become_ascii_but_chinese_punctuation_stays() -> None:
    assert normalize_line("Ｋ字签证　停留期：１８０日，多次。") == "K字签证停留期：180日，多次。"


def test_markup_only_rerender_gives_identical_text() -> None:
    a = "<div id='UCAP-CONTENT'><p>K字签证有效期五年。</p><p>每次停留不超过180日。</p></div>"
    b = ("<div id='UCAP-CONTENT' class='v2'>\n  <div><span style='color:red'>K字签证</span>有效期\n五年。</div>"
         "<section><p><b>每次停留</b>不超过 180 日。</p></section></div>")
    assert normalize_html(a, "http://x/").text == normalize_html(b, "http://x/").text


def test_numbers_in_content_are_kept_but_counters_and_dates_go() -> None:
    html = ("<div id='UCAP-CONTENT'><p>今天是2026年11月25日 星期三</p><p>浏览次数：1234</p>"
            "<p>发布时间：2026-11-25 10:00</p><p>停留期180日，费用为人民币400元。</p></div>")
    assert normalize_html(html, "http://x/").text == "停留期180日，费用为人民币400元。"


def test_links_are_absolute_deduplicated_and_exclude_scripts() -> None:
    html = ("<base href='http://h.example/a/'><div id='News_Body_Txt_A'><p><a href='P01.pdf'>名单</a>"
            "<a href='P01.pdf#x'>again</a><a href='javascript:void(0)'>js</a><a href='mailto:a@b'>m</a></p></div>")
    page = normalize_html(html, "http://h.example/a/b.htm")
    assert [(l.text, l.url) for l in page.links] == [("名单", "http://h.example/a/P01.pdf")]


def test_pdf_text_is_chinese_and_page_numbers_are_dropped() -> None:
    page = normalize_pdf((PAGES / "embassy-visa-guide-pdf.pdf").read_bytes())
    assert "二、K字签证有效期为5年，可多次入境，每次停留不超过180日。" in page.text.splitlines()
    assert "- 1 -" not in page.text


def _zip(files: dict[str, str]) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return out.getvalue()


def test_docx_and_xlsx_attachments_become_text() -> None:
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    docx = _zip({"word/document.xml": f"<w:document {w}><w:body><w:p><w:r><w:t>K字签证</w:t></w:r><w:r><w:t>停留期１８０日</w:t></w:r></w:p><w:p><w:r><w:t>第二段</w:t></w:r></w:p></w:body></w:document>"})
    page, _ = read_body(PageSpec(id="d", url="http://127.0.0.1/a.docx"), "http://127.0.0.1/a.docx", docx, "application/octet-stream")
    assert page.text == "K字签证停留期180日\n第二段"
    s = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    xlsx = _zip({
        "xl/workbook.xml": f"<workbook {s}/>",
        "xl/sharedStrings.xml": f"<sst {s}><si><t>院校</t></si><si><t>东岳理工大学</t></si></sst>",
        "xl/worksheets/sheet1.xml": f'<worksheet {s}><sheetData><row><c t="s"><v>0</v></c><c><v>1</v></c></row><row><c t="s"><v>1</v></c><c><v>2</v></c></row></sheetData></worksheet>',
    })
    page, _ = read_body(PageSpec(id="x", url="http://127.0.0.1/a.xlsx"), "http://127.0.0.1/a.xlsx", xlsx, "application/octet-stream")
    assert page.text == "院校｜1\n东岳理工大学｜2"
    legacy, _ = read_body(PageSpec(id="l", url="http://127.0.0.1/a.doc"), "http://127.0.0.1/a.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"x" * 100, "")
    assert legacy.text.startswith("a.doc: binary Office document, 108 bytes, sha256 ")


def test_deeply_nested_markup_does_not_hit_a_recursion_limit() -> None:
    html = "<main>" + "<div>" * 1500 + "<p>K字签证停留期180日</p>" + "</div>" * 1500 + "<table><tr><td>a</td><td>b</td></tr></table></main>"
    assert normalize_html(html, "http://127.0.0.1/x").text == "K字签证停留期180日\na｜b"


def test_markup_nested_beyond_the_parsers_limit_is_read_leniently_not_lost() -> None:
    html = "<main>" + "<div>" * 3000 + "<p>K字签证停留期180日</p><script>x=1</script>" + "</div>" * 3000 + "<p>第二段</p></main>"
    page = normalize_html(html, "http://127.0.0.1/x")
    assert page.text == "K字签证停留期180日\n第二段" and "read leniently" in page.region
    with pytest.raises(NoText):
        normalize_html("<main>" + "<div>" * 3000 + "</div>" * 3000 + "</main>", "http://127.0.0.1/x")


def test_site_family_is_the_most_specific_host_match() -> None:
    from crawler.families import family_for_host, tier_for

    assert [family_for_host(h) for h in ("www.nia.gov.cn", "s.nia.gov.cn", "english.www.gov.cn", "us.china-embassy.gov.cn", "www.fmprc.gov.cn")] == [
        "nia", "nia", "gov.cn", "mission", "fmprc"]
    assert family_for_host("www.beijing.gov.cn") is None  # provincial sites: no State Council template or tier
    assert tier_for("www.nia.gov.cn", {}) == "ministry" and tier_for("www.gov.cn", {}) == "decree"


def test_nia_listing_on_its_real_host_uses_the_nia_list() -> None:
    url = "https://www.nia.gov.cn/n741440/n741547/index.html"
    page, _ = read_body(PageSpec(id="nia-news", url=url, kind="listing"), url, (PAGES / "nia-news.html").read_bytes(), "text/html")
    assert page.region.endswith("div.list_bd") and len(page.links) == 3


GBK_PAGE = "<html><head><meta charset='{meta}'></head><body><div id='News_Body_Txt_A'><p>K字签证每次停留不超过90日，有效期5年。王喆</p></div></body></html>"


@pytest.mark.parametrize(("meta", "header"), [("utf-8", "text/html"), ("utf-8", "text/html; charset=utf-8"), ("gb2312", "text/html; charset=ISO-8859-1"),
                                              ("iso-8859-1", "text/html"), ("big5", "text/html")])
def test_a_declaration_that_does_not_decode_cleanly_never_wins(meta: str, header: str) -> None:
    body = GBK_PAGE.format(meta=meta).encode("gbk")
    page, encoding = read_body(PageSpec(id="x", url="http://127.0.0.1/x"), "http://127.0.0.1/x", body, header)
    assert page.text == "K字签证每次停留不超过90日，有效期5年。王喆" and encoding == "gb18030"


def test_a_utf8_page_declared_gbk_is_read_as_utf8() -> None:
    body = GBK_PAGE.format(meta="gbk").encode("utf-8")
    page, encoding = read_body(PageSpec(id="x", url="http://127.0.0.1/x"), "http://127.0.0.1/x", body, "text/html; charset=GBK")
    assert "有效期5年" in page.text and encoding == "utf-8"


def test_bytes_no_character_set_decodes_are_an_error_not_mojibake() -> None:
    from crawler.charset import Undecodable

    body = b"<html><body><p>" + bytes(range(0x80, 0x100)) * 4 + b"</p></body></html>"
    with pytest.raises(Undecodable, match="no character set decodes"):
        read_body(PageSpec(id="x", url="http://127.0.0.1/x"), "http://127.0.0.1/x", body, "text/html; charset=utf-8")

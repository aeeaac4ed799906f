"""Hostile and awkward bodies, made here, through the real parsing code: huge link lists, NULs,
lying charsets, non-ASCII links, empty bodies, things that are not PDFs."""

from __future__ import annotations

import io
from datetime import date, datetime, timezone

import pytest

from harvester.web import extract
from harvester.errors import ContentError
from harvester.web.extract import parse_html, parse_pdf


ARTICLE = "The community group met again this week to plan the summer festival together. " * 20


def test_a_page_with_100000_links_yields_at_most_max_links_and_its_article():
    nav = "".join(f'<a href="/p{i}">Page {i}</a> ' for i in range(100_000))
    body = f"<html><body><nav>{nav}</nav><article><p>{ARTICLE}</p></article></body></html>".encode()
    page = parse_html(body, "https://example.org/")
    assert len(page.links) == extract.MAX_LINKS
    assert page.links[0] == ("https://example.org/p0", "Page 0")
    assert "plan the summer festival" in page.text
    assert "Page 99999" not in page.text


def test_nul_bytes_and_a_lying_charset_give_text_without_nuls():
    html = ("<html><head><meta charset='utf-8'><title>Caf\xe9\x00 news</title></head><body><article><p>"
            + "Le caf\xe9 \x00 est ouvert tous les jours pour la communaut\xe9 du quartier. " * 5
            + "</p></article></body></html>")
    page = parse_html(html.encode("latin-1"), "https://example.org/cafe")  # says utf-8, is latin-1
    assert "est ouvert tous les jours" in page.text
    assert "\x00" not in page.text and "\x00" not in page.title
    assert "\x00" not in extract.decode(b"a\x00b", "utf-8")


def test_an_empty_body_gives_an_empty_page():
    page = parse_html(b"", "https://example.org/")
    assert (page.title, page.text, page.links, page.feeds, page.published) == ("", "", (), (), None)


@pytest.mark.parametrize("body", [b"<html><body>not a pdf</body></html>", b"", b"%PDF-1.4\n%garbage\x00\xff"])
def test_parse_pdf_rejects_what_is_not_a_pdf(body):
    with pytest.raises(ContentError, match="unreadable PDF"):
        parse_pdf(body)


def test_parse_pdf_reads_a_real_pdf():
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_metadata({"/Title": "Equality objectives 2026"})
    out = io.BytesIO()
    writer.write(out)
    title, text, _ = parse_pdf(out.getvalue())
    assert title == "Equality objectives 2026"
    assert text == ""


@pytest.mark.parametrize("html, charset, encoding", [
    ("<html><head><title>t</title></head><body>{link}</body></html>", "utf-8", "utf-8"),  # HTTP header only
    ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-8859-1'><title>t</title>"
     "</head><body>{link}</body></html>", None, "latin-1"),  # a correct, non-UTF-8 meta charset
], ids=["utf8-charset-in-http-header", "latin1-charset-in-meta"])
def test_non_ascii_links_keep_their_characters(html, charset, encoding):
    body = html.format(link='<a href="/über-uns">Über uns</a>').encode(encoding)
    page = parse_html(body, "https://example.org/", charset)
    assert page.links == (("https://example.org/über-uns", "Über uns"),)


def page_with(head: str = "", text: str = ARTICLE) -> bytes:
    return f"<html><head>{head}</head><body><article><p>{text}</p></article></body></html>".encode()


def test_a_page_is_dated_by_its_markup_first():
    head = '<meta property="article:published_time" content="2025-03-05T09:00:00+00:00">'
    page = parse_html(page_with(head, ARTICLE + " Posted on 1 April 2024."), "https://example.org/news/2023/01/02/x/")
    assert page.published == datetime(2025, 3, 5, 9, 0, tzinfo=timezone.utc)


def test_json_ld_and_time_elements_date_a_page():
    ld = '<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2024-06-12"}</script>'
    assert parse_html(page_with(ld), "https://example.org/a/").published.date() == date(2024, 6, 12)
    time_element = page_with(text=ARTICLE + '</p><p><time datetime="2023-09-01">1 September</time>')
    assert parse_html(time_element, "https://example.org/b/").published.date() == date(2023, 9, 1)


def test_without_markup_the_url_then_the_text_date_a_page():
    assert parse_html(page_with(), "https://example.org/news/2022/11/30/fair/").published.date() == date(2022, 11, 30)
    written = page_with(text="Posted on Wednesday 12th of March 2025. " + ARTICLE)
    assert parse_html(written, "https://example.org/news/fair/").published.date() == date(2025, 3, 12)
    uk_numeric = page_with(text=ARTICLE + " Updated 05/03/2024.")
    assert parse_html(uk_numeric, "https://example.org/c/").published.date() == date(2024, 3, 5)  # day first


def test_a_page_that_gives_no_date_is_undated_not_dated_today():
    future = page_with(text=ARTICLE + f" Our next fair is on 1 June {date.today().year + 2}.")
    assert parse_html(future, "https://example.org/d/").published is None  # a future event is no publication date
    assert parse_html(page_with(), "https://example.org/e/").published is None

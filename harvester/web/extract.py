"""Turning fetched bodies into text: web pages (trafilatura), PDFs (pypdf) and post HTML.

Pure functions over bytes, so they are tested on recorded bodies and run on hostile ones: wrong
charsets, NUL bytes, broken markup and huge link lists end in text or an empty result, never an
exception escaping to the crawl.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import warnings
from dataclasses import dataclass

import justext
import lxml.html
import trafilatura
import trafilatura.external
from bs4 import BeautifulSoup

from harvester.errors import ContentError
from harvester.items import normalise_text
from harvester.web.urls import canonical

logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
logging.getLogger("htmldate").setLevel(logging.CRITICAL)
logging.getLogger("pypdf").setLevel(logging.CRITICAL)
MAX_LINKS = 2000  # a page with 100,000 links yields only the first of them
_UTF8_PARSER = lxml.html.HTMLParser(encoding="utf-8")  # we hand lxml text we have already decoded
# jusText, trafilatura's last fallback, otherwise builds one stoplist from all 100 of its languages:
# 28 MB held for the whole harvest (and turned into a set again on every page it reads). The
# languages UK organisations publish in cover what it needs to tell text from boilerplate.
STOPLIST_LANGUAGES = ("English", "Welsh", "Irish", "Polish", "Romanian", "Lithuanian", "Urdu", "Bengali",
                      "Gujarati", "Arabic", "Turkish", "Portuguese", "Spanish", "Italian", "French", "German")
trafilatura.external.JT_STOPLIST = tuple(sorted({word for language in STOPLIST_LANGUAGES
                                                 for word in justext.get_stoplist(language)}))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-:]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    title: str
    text: str
    published: dt.datetime | None
    links: tuple[tuple[str, str], ...]  # (absolute URL, anchor text)
    feeds: tuple[str, ...] = ()  # <link rel="alternate"> feeds


def decode(body: bytes, charset: str | None) -> str:
    """Bytes to text: the declared charset, else a <meta> charset, else UTF-8; never raises."""
    candidates = [charset]
    match = _META_CHARSET.search(body[:4096])
    if match:
        candidates.append(match.group(1).decode("ascii", "ignore"))
    for name in candidates + ["utf-8"]:
        if not name:
            continue
        try:
            return body.decode(name).replace("\x00", "")
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", errors="replace").replace("\x00", "")


def parse_date(value: str | None) -> dt.datetime | None:
    """An ISO-ish date or date-time as an aware UTC datetime, or None."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def parse_html(body: bytes, url: str, charset: str | None = None) -> Page:
    """Main text, title, date and links of a web page."""
    html = decode(body, charset)
    links: list[tuple[str, str]] = []
    feeds: list[str] = []
    title = ""
    try:
        tree = lxml.html.fromstring(html.encode("utf-8"), base_url=url, parser=_UTF8_PARSER)
        title = normalise_text(tree.findtext(".//title") or "")
        for a in tree.iter("a"):
            href = a.get("href")
            target = canonical(href, url) if href else None
            if target:
                links.append((target, normalise_text(a.text_content())[:200]))
                if len(links) >= MAX_LINKS:
                    break
        for link in tree.iter("link"):
            kind = (link.get("type") or "").lower()
            if "alternate" in (link.get("rel") or "").lower() and ("rss" in kind or "atom" in kind):
                target = canonical(link.get("href") or "", url)
                if target:
                    feeds.append(target)
    except (ValueError, lxml.etree.ParserError):
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # The date the page gives: its markup, then its URL, then its text (htmldate). None when it
            # gives none: the harvest date is never passed off as a publication date.
            doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                              include_tables=True,
                                              date_extraction_params={"extensive_search": True,
                                                                      "original_date": True})
        except Exception:  # trafilatura raises assorted errors on hostile markup
            doc = None
    text = normalise_text(doc.text or "") if doc is not None else ""
    if doc is not None and doc.title:
        title = normalise_text(doc.title)
    published = parse_date(doc.date) if doc is not None else None
    return Page(title=title, text=text, published=published, links=tuple(links), feeds=tuple(feeds))


def parse_pdf(body: bytes) -> tuple[str, str, dt.datetime | None]:
    """Title, text and creation date of a PDF; raises ContentError when it cannot be read."""
    import pypdf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = pypdf.PdfReader(io.BytesIO(body))
            text = "\n".join((page.extract_text() or "") for page in reader.pages[:200])
            meta = reader.metadata
            title = str(meta.title) if meta and meta.title else ""
            created = meta.creation_date if meta else None
        except Exception as exc:  # pypdf raises many error types on damaged files
            raise ContentError(f"unreadable PDF ({exc.__class__.__name__}: {exc})") from None
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)
    return normalise_text(title), normalise_text(text), created


def html_to_text(html: str | None) -> str:
    """Plain text of a post's HTML (Mastodon content, feed summaries), paragraphs kept."""
    if not html:
        return ""
    soup = BeautifulSoup(html, "html.parser")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for p in soup.find_all(["p", "li", "div"]):
        p.insert_after("\n")
    return normalise_text(soup.get_text())

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
import htmldate
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
# We hand lxml text we have already decoded; comments and processing instructions go, as trafilatura's
# own parser drops them, so it reads our tree as it would have read its own.
_PARSER = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, collect_ids=False,
                               default_doctype=False)
LINK_LIST_MIN_LINES = 8  # a page whose text is at least this many lines ...
LINK_LIST_SHARE = 0.6  # ... this share of them its own links' words is a list of links
LINK_FARM_ANCHORS = 1000  # distinct link texts: more than any menu
LINK_FARM_SHARE = 0.7
MAX_HTML_CHARS = 3_000_000
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
    link_list: bool = False  # its text is mostly its links' words: crawled, not kept as evidence


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
    """Main text, title, date and links of a web page, from one parse of it.

    The links come first, off the tree (each anchor's own words, not its whole `text_content`);
    then trafilatura reads the same tree (on a copy it makes); the date is looked for only when
    there is text for it to date. A page whose text is mostly its links' words (an index, a
    sitemap page) says so in `link_list`: it is crawled for its links, not kept as evidence.
    """
    html = decode(body, charset)[:MAX_HTML_CHARS]  # past this, a page is a trap, not an article
    try:
        tree = lxml.html.fromstring(html.encode("utf-8"), base_url=url, parser=_PARSER)
    except (ValueError, lxml.etree.ParserError):
        return Page(title="", text="", published=None, links=())
    links, anchors, linked_chars = _links(tree, url)
    title = normalise_text(tree.findtext(".//title") or "")
    feeds = tuple(target for link in tree.iter("link")
                  if "alternate" in (link.get("rel") or "").lower()
                  and any(kind in (link.get("type") or "").lower() for kind in ("rss", "atom"))
                  and (target := canonical(link.get("href") or "", url)))
    if is_link_farm(tree, len(anchors), linked_chars):  # thousands of links and little else: not read
        return Page(title=title, text="", published=None, links=tuple(links), feeds=feeds, link_list=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            text = normalise_text(trafilatura.extract(tree, url=url, include_comments=False, include_tables=True,
                                                      with_metadata=False) or "")
        except Exception:  # trafilatura raises assorted errors on hostile markup
            text = ""
        published = _page_date(tree, url) if text else None
    return Page(title=title, text=text, published=published, links=tuple(links), feeds=feeds,
                link_list=bool(text) and is_link_list(text, anchors))


def _links(tree, url: str) -> tuple[list[tuple[str, str]], set[str], int]:
    """(absolute URL, the anchor's words) of the first MAX_LINKS links; every anchor's words; and
    how many characters (spaces aside) all the anchors' words hold."""
    links: list[tuple[str, str]] = []
    anchors: set[str] = set()
    linked_chars = 0
    for a in tree.iter("a"):
        words = a.text or (a[0].text if len(a) else None) or ""
        words = " ".join(words.split())[:200]
        if words:
            anchors.add(words)
            linked_chars += len(words) - words.count(" ")
        if len(links) < MAX_LINKS and (href := a.get("href")) and (target := canonical(href, url)):
            links.append((target, words))
    return links, anchors, linked_chars


def is_link_farm(tree, anchors: int, linked_chars: int) -> bool:
    """Thousands of distinct links whose words are most of the page's text: a generated index or a
    trap, never evidence, and slow to read (a 100,000-link page costs trafilatura half a minute)."""
    if anchors < LINK_FARM_ANCHORS:
        return False
    body = tree.find("body")
    text = (body if body is not None else tree).text_content()
    return linked_chars >= LINK_FARM_SHARE * (len(text) - text.count(" ") - text.count("\n"))


def is_link_list(text: str, anchors: set[str]) -> bool:
    """True when most of a page's text is the words of its own links: a menu, an index or a
    sitemap page, which leads to evidence but is none."""
    lines = text.split("\n")
    if len(lines) < LINK_LIST_MIN_LINES:
        return False
    linked = sum(len(line) for line in lines if line in anchors)
    return linked >= LINK_LIST_SHARE * len(text)


def _page_date(tree, url: str) -> dt.datetime | None:
    """The date the page gives: its markup, then its URL, then its text (htmldate). None when it
    gives none: the harvest date is never passed off as a publication date."""
    try:
        found = htmldate.find_date(tree, url=url, extensive_search=True, original_date=True)
    except Exception:  # htmldate raises assorted errors on hostile markup
        return None
    return parse_date(found)


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

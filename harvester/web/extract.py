"""Turning fetched bodies into text: web pages (trafilatura), PDFs (pypdf) and post HTML.

Pure functions over bytes, so they are tested on recorded bodies and run on hostile ones: wrong
charsets, NUL bytes, broken markup and huge link lists end in text or an empty result, never an
exception escaping to the crawl.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import re
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

import lxml.html

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
MAX_HTML_CHARS = 5_000_000
# jusText, trafilatura's last fallback, otherwise builds one stoplist from all 100 of its languages:
# 28 MB held for the whole harvest (and turned into a set again on every page it reads). The
# languages UK organisations publish in cover what it needs to tell text from boilerplate.
STOPLIST_LANGUAGES = ("English", "Welsh", "Irish", "Polish", "Romanian", "Lithuanian", "Urdu", "Bengali",
                      "Gujarati", "Arabic", "Turkish", "Portuguese", "Spanish", "Italian", "French", "German")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-:]+)""", re.IGNORECASE)


@functools.cache
def _trafilatura():
    """trafilatura, set up once, imported where pages are read: a harvest's main process, which hands
    its pages to the pool's workers, never holds it (a third of its memory at start)."""
    import justext
    import trafilatura
    import trafilatura.external

    trafilatura.external.JT_STOPLIST = tuple(sorted({word for language in STOPLIST_LANGUAGES
                                                     for word in justext.get_stoplist(language)}))
    return trafilatura


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
    links, anchors = _links(tree, url)
    title = normalise_text(tree.findtext(".//title") or "")
    feeds = tuple(target for link in tree.iter("link")
                  if "alternate" in (link.get("rel") or "").lower()
                  and any(kind in (link.get("type") or "").lower() for kind in ("rss", "atom"))
                  and (target := canonical(link.get("href") or "", url)))
    if len(anchors) >= LINK_FARM_ANCHORS:  # a trap or a generated index: its text is read without them
        lxml.etree.strip_elements(tree, "a", with_tail=False)  # (100,000 links: half a minute and 450 MB)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            text = normalise_text(_trafilatura().extract(tree, url=url, include_comments=False,
                                                         include_tables=True, with_metadata=False) or "")
        except Exception:  # trafilatura raises assorted errors on hostile markup
            text = ""
        published = _page_date(tree, url, text) if text else None
    return Page(title=title, text=text, published=published, links=tuple(links), feeds=feeds,
                link_list=bool(text) and is_link_list(text, anchors))


def _links(tree, url: str) -> tuple[list[tuple[str, str]], set[str]]:
    """(absolute URL, the anchor's own words) of the first MAX_LINKS links, and every anchor's words."""
    links: list[tuple[str, str]] = []
    anchors: set[str] = set()
    for a in tree.iter("a"):
        words = a.text or (a[0].text if len(a) else None) or ""
        words = " ".join(words.split())[:200]
        if words:
            anchors.add(words)
        if len(links) < MAX_LINKS and (href := a.get("href")) and (target := canonical(href, url)):
            links.append((target, words))
    return links, anchors


def is_link_list(text: str, anchors: set[str]) -> bool:
    """True when most of a page's text is the words of its own links: a menu, an index or a
    sitemap page, which leads to evidence but is none."""
    lines = text.split("\n")
    if len(lines) < LINK_LIST_MIN_LINES:
        return False
    linked = sum(len(line) for line in lines if line in anchors)
    return linked >= LINK_LIST_SHARE * len(text)


def _page_date(tree, url: str, text: str) -> dt.datetime | None:
    """The date the page gives: its markup, then its URL, then the first full date its text states.
    None when it gives none: the harvest date is never passed off as a publication date. (htmldate
    does this too, but copies and cleans the whole tree first: it cost more than reading the page.)"""
    return markup_date(tree) or url_date(url) or text_date(text)


# <meta> names and properties that carry a publication date (not a modification date)
META_DATES = {"article:published_time", "og:published_time", "datepublished", "date", "dc.date",
              "dc.date.issued", "dc.date.created", "dcterms.created", "dcterms.date", "dcterms.issued",
              "publish-date", "publish_date", "publishdate", "pubdate", "published", "published_time",
              "article.published", "sailthru.date", "release_date", "citation_publication_date"}
_META = lxml.etree.XPath("//meta[@content and (@property or @name or @itemprop)]")
_PUBLISHED = lxml.etree.XPath('//*[@itemprop="datePublished"] | //time[@datetime]')
_JSON_LD = lxml.etree.XPath('//script[@type="application/ld+json"]/text()')
_JSON_DATE = re.compile(r'"datePublished"\s*:\s*"([^"]{8,40})"')
_URL_DATE = re.compile(r"/((?:19|20)\d\d)[/-]([01]?\d)[/-]([0-3]?\d)(?:/|$|-)")


def markup_date(tree) -> dt.datetime | None:
    """A publication date the page's markup states: <meta>, JSON-LD, itemprop or <time datetime>."""
    for meta in _META(tree):
        name = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        if name in META_DATES and (found := _any_date(meta.get("content"))):
            return found
    for block in _JSON_LD(tree):
        for value in _JSON_DATE.findall(block):
            if found := _any_date(value):
                return found
    for element in _PUBLISHED(tree):
        if found := _any_date(element.get("content") or element.get("datetime") or element.text):
            return found
    return None


def url_date(url: str) -> dt.datetime | None:
    """A date in the URL's path (/news/2025/03/05/...)."""
    match = _URL_DATE.search(urlsplit(url).path)
    if match:
        try:
            day = dt.date(*(int(part) for part in match.groups()))
        except ValueError:
            return None
        if _plausible(day):
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return None


def _any_date(value: str | None) -> dt.datetime | None:
    """An ISO date-time, or a date written out ("5 March 2025"), if plausible."""
    if not value or not value.strip():
        return None
    found = parse_date(value.strip()[:40])
    if found is not None:
        return found if _plausible(found.date()) else None
    return text_date(value[:80])


def _plausible(day: dt.date, today: dt.date | None = None) -> bool:
    return dt.date(1995, 1, 1) <= day <= (today or dt.date.today()) + dt.timedelta(days=1)


MONTHS = {name: n for n, names in enumerate(
    (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")), start=1) for name in names}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_TEXT_DATE = re.compile(
    rf"\b(?:(?P<d1>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m1>{_MONTH})\.?,?\s+(?P<y1>(?:19|20)\d\d)"  # 5 March 2025
    rf"|(?P<m2>{_MONTH})\.?\s+(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?,?\s+(?P<y2>(?:19|20)\d\d)"  # March 5, 2025
    rf"|(?P<y3>(?:19|20)\d\d)-(?P<m3>[01]\d)-(?P<d3>[0-3]\d)"  # 2025-03-05
    rf"|(?P<d4>[0-3]?\d)/(?P<m4>[01]?\d)/(?P<y4>(?:19|20)\d\d))\b",  # 05/03/2025, day first (UK)
    re.IGNORECASE)


_YEAR = re.compile(r"(?:19|20)\d\d")


def text_date(text: str, today: dt.date | None = None) -> dt.datetime | None:
    """The first whole, plausible date (not in the future) in a page's text, as UK pages write them."""
    for year in _YEAR.finditer(text, 0, 20_000):  # look only around a year: most text has none
        match = _TEXT_DATE.search(text[max(0, year.start() - 25):year.end() + 6])
        if match is None:
            continue
        g = match.groupdict()
        for d, m, y in (("d1", "m1", "y1"), ("d2", "m2", "y2"), ("d3", "m3", "y3"), ("d4", "m4", "y4")):
            if g[y]:
                month = MONTHS.get(g[m].lower().rstrip(".")) if not g[m].isdigit() else int(g[m])
                try:
                    found = dt.date(int(g[y]), month or 0, int(g[d]))
                except ValueError:
                    break
                if _plausible(found, today):
                    return dt.datetime(found.year, found.month, found.day, tzinfo=dt.timezone.utc)
                break
    return None


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
    from bs4 import BeautifulSoup  # only where feeds and posts are read

    soup = BeautifulSoup(html, "html.parser")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for p in soup.find_all(["p", "li", "div"]):
        p.insert_after("\n")
    return normalise_text(soup.get_text())

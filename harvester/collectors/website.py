"""The website collector: a small, focused, polite crawl of one organisation's site.

Discovery starts from the home page and every sitemap (robots.txt `Sitemap:` lines, else
/sitemap.xml), stays on the site, skips what robots.txt disallows, and fetches likely evidence
first (URLs and link words such as equality, cohesion, CCQM, news, report) within a page budget.
Pages already stored are asked for conditionally (ETag / Last-Modified): a 304 costs no
extraction and no snapshot, and the links remembered in the cursor keep discovery going. A page
that now answers 404 or 410 is marked gone and keeps its evidence.
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import io
import itertools
import re
import sys
from collections import Counter
from typing import Iterator
from urllib.parse import parse_qsl, urlsplit

from lxml import etree

from harvester.collectors import CollectRequest, Event
from harvester.errors import BlockedURLError, ContentError, FetchError, RobotsDeniedError
from harvester.web.extract import parse_pdf
from harvester.web.client import Response
from harvester.config.scheme import profile_of
from harvester.config.settings import HarvestSettings
from harvester.items import (
    Checkpoint, Gone, Item, NextCursor, Problem, ProfileLinks, Refused, Seen, Snapshot, tags_scheme, utcnow,
)
from harvester.web.urls import canonical, in_scope, worth_fetching

EVIDENCE_WORDS = ("ccqm", "cohesion", "equality", "equalities", "diversity", "inclusion", "inclusive", "pledge",
                  "culture", "cultural", "community", "news", "blog", "report", "policy", "policies", "impact",
                  "survey", "objectives", "belonging", "faith", "about", "story", "stories", "update")
NOISE_WORDS = ("login", "cart", "basket", "checkout", "account", "search", "calendar", "tag/", "page/", "print")
MAX_SITEMAP_URLS = 5000
MAX_SITEMAP_BYTES = 10_000_000  # inflated: 5,000 entries take about 1 MB
_DIGITS = re.compile(r"\d+")
# A calendar: dated paths under a calendar's name (/events/2026/11/), or a date in the query (?month=11).
_CALENDAR = re.compile(r"(calendar|diary|event|agenda|whats-on|month|week|date)[^?]*#[/-]#"
                       r"|[?&](date|day|month|year|week|start|end)(&|$)")
MAX_PROFILES = 50  # social profile links remembered from one site
MAX_LINKS_KEPT = 200  # per page, in the cursor: how an unchanged (304) page's links are followed again
CHECKPOINT_PAGES = 10


def priority(url: str, anchor: str, depth: int) -> float:
    """Higher for likely evidence, lower with depth: the crawl spends its budget on these first."""
    words = f"{urlsplit(url).path} {anchor}".lower()
    score = sum(2.0 for w in EVIDENCE_WORDS if w in words) - sum(3.0 for w in NOISE_WORDS if w in words)
    if urlsplit(url).path.lower().endswith(".pdf"):
        score += 1.5
    return score - depth * 1.5


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or sitemap index; gzip is unpacked."""
    entries, children = sitemap_entries(body)
    return [url for url, _ in entries], children


def sitemap_entries(body: bytes) -> tuple[list[tuple[str, str | None]], list[str]]:
    """((page URL, its <lastmod> or None), child sitemap URLs) of a sitemap or sitemap index.

    Read as a stream and dropped entry by entry, up to MAX_SITEMAP_URLS: a sitemap of millions of
    URLs, or a gzip that inflates to gigabytes, costs no more memory than a small one."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(MAX_SITEMAP_BYTES)
        except (OSError, EOFError):
            return [], []
    pages: list[tuple[str, str | None]] = []
    children: list[str] = []
    entries = etree.iterparse(io.BytesIO(body[:MAX_SITEMAP_BYTES]), events=("end",), tag=("{*}url", "{*}sitemap"),
                              recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        for _, entry in entries:
            loc = (entry.findtext("{*}loc") or "").strip()
            if loc and etree.QName(entry).localname == "sitemap":
                children.append(loc)
            elif loc:
                lastmod = (entry.findtext("{*}lastmod") or "").strip()
                pages.append((loc, lastmod or None))
            entry.clear()
            if len(pages) + len(children) >= MAX_SITEMAP_URLS:
                break
    except etree.XMLSyntaxError:
        pass  # what was read before the damage is kept
    return pages, children


def trusted_lastmods(entries: dict[str, str | None], today: dt.date) -> dict[str, str]:
    """The sitemap dates worth skipping a page for. None when the sitemap's dates say nothing: all
    one date over many pages, or today's on most (a sitemap that stamps every page with the time it
    was generated); a date in the future is ignored on its own."""
    dated = {url: lastmod for url, lastmod in entries.items() if lastmod}
    if len(dated) >= 5:
        days = Counter(lastmod[:10] for lastmod in dated.values())
        day, count = days.most_common(1)[0]
        if count >= 0.9 * len(dated) and (len(days) == 1 or day >= today.isoformat()):
            return {}
    latest = (today + dt.timedelta(days=1)).isoformat()
    return {url: lastmod for url, lastmod in dated.items() if lastmod[:10] <= latest}


def path_pattern(url: str) -> str:
    """What a family of generated URLs has in common: digits generalised, query values dropped
    (/calendar/2026/11/?view=month -> /calendar/#/#/?view). Calendars, archives and faceted
    searches make thousands of pages of one pattern."""
    parts = urlsplit(url)
    keys = sorted({key for key, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return _DIGITS.sub("#", parts.path.lower()) + ("?" + "&".join(keys) if keys else "")


def pattern_cap(pattern: str, limits: HarvestSettings) -> int:
    """How many pages of one pattern a crawl may fetch: few of a calendar or of one path's query
    variants (filters, sorts, session ids), more of anything else."""
    if _CALENDAR.search(pattern):
        return limits.max_calendar_pages
    if "?" in pattern:
        return limits.max_query_variants
    return limits.max_pages_per_pattern


def _snapshot(response: Response) -> Snapshot:
    keep = {k: v for k, v in response.headers.items()
            if k in ("content-type", "etag", "last-modified", "date", "content-language", "server")}
    return Snapshot(url=response.url, fetched_at=response.fetched_at, status=response.status,
                    content_type=response.content_type, body=response.body, headers=keep, record=response.record)


def page_item(req: CollectRequest, url: str, response: Response) -> tuple[Item | None, list[tuple[str, str]]]:
    """The item a fetched page or PDF makes, and the links it offers."""
    spec = req.source
    common = dict(org_id=spec.org_id, source_id=spec.id, platform="website", native_id=url, url=url,
                  snapshot=_snapshot(response), etag=response.headers.get("etag"),
                  last_modified=response.headers.get("last-modified"))
    if response.content_type == "application/pdf" or response.body[:5] == b"%PDF-":
        title, text, created = parse_pdf(response.body)
        title = title or urlsplit(url).path.rsplit("/", 1)[-1]
        return Item(kind="pdf", title=title, text=text, published=created,
                    tags_scheme=tags_scheme(text), **common), []
    if response.content_type not in ("text/html", "application/xhtml+xml", ""):
        return None, []
    page = req.parse_html(response.body, url, response.charset)
    item = None
    if page.text and not page.link_list:
        item = Item(kind="page", title=page.title, text=page.text, published=page.published,
                    tags_scheme=tags_scheme(page.title, page.text), **common)
    return item, list(page.links)


def _sitemap_urls(req: CollectRequest, start: str) -> Iterator[tuple[str, str | None] | Problem]:
    http = req.http
    queue = http.robots.sitemaps(start) or [canonical("/sitemap.xml", start)]
    seen: set[str] = set()
    while queue and len(seen) < 20:
        sitemap = canonical(queue.pop(0))
        if not sitemap or sitemap in seen or not in_scope(sitemap, start):
            continue
        seen.add(sitemap)
        try:
            response = http.get(sitemap)
        except RobotsDeniedError:
            continue
        except FetchError as exc:
            yield Problem(sitemap, exc)
            continue
        if response.status != 200:
            continue
        pages, children = sitemap_entries(response.body)
        queue += children
        yield from pages


def collect(req: CollectRequest) -> Iterator[Event]:
    http, limits = req.http, req.settings.harvest
    start = canonical(req.source.locator)
    links_memory = remembered_links(req.cursor)
    new_links: dict[str, list[str]] = {}
    counter = itertools.count()
    frontier: list[tuple[float, int, int, str]] = []
    queued: dict[str, float] = {}  # URL -> the best priority it was queued with

    def push(url: str | None, anchor: str, depth: int) -> None:
        """Queue a URL, or queue it again when a link's words make it more likely evidence than the
        sitemap (which has no words) said; the lower entry is skipped when it comes up."""
        if not url or depth > limits.max_depth or not in_scope(url, start) or not worth_fetching(url):
            return
        rank = priority(url, anchor, depth)
        if url in queued and queued[url] >= rank:
            return
        url = sys.intern(url)  # one copy of each URL, however many pages link to it
        queued[url] = rank
        heapq.heappush(frontier, (-rank, depth, next(counter), url))

    http.robots.parser(start)
    if http.robots.error(start):  # the whole source fails; its stored evidence stays as it was
        raise FetchError(f"robots.txt could not be read ({http.robots.error(start)}); site not crawled",
                         url=start)
    queued[start] = float("inf")
    heapq.heappush(frontier, (-float("inf"), 0, next(counter), start))  # the home page first
    sitemap_dates: dict[str, str | None] = {}
    for entry in _sitemap_urls(req, start):
        if isinstance(entry, Problem):
            yield entry
        elif (url := canonical(entry[0])):
            sitemap_dates.setdefault(url, entry[1])
            push(url, "", 1)
    today = utcnow().date().toordinal()
    lastmods = trusted_lastmods(sitemap_dates, utcnow().date())
    checked: dict[str, list] = req.cursor.get("checked", {})  # URL -> [its lastmod, the day it was read]
    new_checked: dict[str, list] = {}
    patterns: Counter = Counter()

    aliases: dict[str, str] = dict(req.cursor.get("aliases", {}))  # URL asked for -> where it redirected
    done: set[str] = set()
    profiles: set[str] = set()  # the social accounts the site links to (they are its own)
    fetched = skipped = 0
    while frontier and fetched + skipped < limits.max_pages_per_site:
        _, depth, _, asked = heapq.heappop(frontier)
        url = aliases.get(asked, asked)  # a page is known, asked for and kept under its final URL
        if url in done:
            continue
        if not http.robots.allowed(url):
            yield Refused(url, "disallowed by robots.txt")
            continue
        pattern = path_pattern(url)
        patterns[pattern] += 1
        cap = pattern_cap(pattern, limits)
        if patterns[pattern] > cap:
            if patterns[pattern] == cap + 1:  # said once, not once per trap page
                yield Refused(url, f"more pages like {pattern} than the {cap} "
                                   f"a site may give; the rest are skipped")
            continue
        done.add(url)
        stamp = lastmods.get(asked) or lastmods.get(url)
        last = checked.get(url)
        if (stamp and last and last[0] == stamp and today - last[1] < limits.recheck_days
                and url in links_memory):  # unchanged since it was read, says the sitemap: not asked for
            skipped += 1
            yield Seen("website", url)
            new_checked[url], new_links[url] = last, links_memory[url]
            for link in links_memory[url]:
                push(link, "", depth + 1)
            continue
        etag, modified = req.validators.get(url, (None, None))
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        fetched += 1
        try:
            response = http.get(url, headers=headers)
        except RobotsDeniedError as exc:  # a redirect into a place robots.txt disallows
            if url == start:
                raise
            yield Refused(url, str(exc).split(": ", 1)[-1])
            continue
        except BlockedURLError as exc:  # a redirect towards a private address: kept in run_errors, by URL
            if url == start:
                raise
            yield Problem(url, exc)
            continue
        except FetchError as exc:
            if asked == start:  # no home page, no crawl: the source fails, stored evidence stays
                raise
            yield Problem(url, exc)
            continue
        final = canonical(response.url) or url
        if final != url:
            if not in_scope(final, start):
                yield Refused(url, f"redirects off the site, to {final}")
                continue
            aliases[asked] = aliases[url] = final
            if final in done and response.status != 304:
                continue
            done.add(final)
        if stamp:
            new_checked[final] = [stamp, today]
        if response.status == 304:
            yield Seen("website", final)
            links = [(link, "") for link in links_memory.get(final, [])]
            new_links[final] = links_memory.get(final, [])
        elif response.status in (404, 410):
            yield Gone("website", final, response.status)
            if asked != url and aliases.pop(asked, None):  # where the link led is gone: follow the link afresh
                heapq.heappush(frontier, (-float("inf"), depth, next(counter), asked))
            continue
        else:
            try:
                item, links = page_item(req, final, response)
            except ContentError as exc:
                yield Problem(final, exc)
                continue
            if item is not None:
                yield item
            new_links[final] = [sys.intern(link) for link, _ in links if in_scope(link, start)][:MAX_LINKS_KEPT]
            if len(profiles) < MAX_PROFILES:
                profiles.update(link for link, _ in links if not in_scope(link, start) and profile_of(link))
        for link, anchor in links:
            push(link, anchor, depth + 1)
        if fetched % CHECKPOINT_PAGES == 0:  # if the run is cut off, the next one resumes from these links
            yield Checkpoint(lambda: {"link_graph": link_graph({**links_memory, **new_links}),
                                      "aliases": dict(aliases), "checked": {**checked, **new_checked},
                                      "pages_fetched": fetched})
    if profiles:
        yield ProfileLinks(tuple(sorted(profiles))[:MAX_PROFILES])
    yield NextCursor({"link_graph": link_graph(new_links), "aliases": aliases, "checked": new_checked,
                      "pages_fetched": fetched, "pages_skipped": skipped})


def link_graph(links: dict[str, list[str]]) -> dict:
    """The pages' links for the cursor, each URL written once: a site's pages mostly link to the same
    few hundred URLs, so this is a fraction of the size of a page -> links map (10,000 pages: about
    1 MB, not 5), and saving it with every batch stays cheap."""
    index: dict[str, int] = {}
    pages = [[index.setdefault(page, len(index)), [index.setdefault(link, len(index)) for link in targets]]
             for page, targets in links.items()]
    return {"urls": list(index), "pages": pages}


def remembered_links(cursor: dict) -> dict[str, list[str]]:
    """Each page's links from a saved cursor (or from the older cursor form, a plain map)."""
    if "link_graph" not in cursor:
        return {page: [sys.intern(u) for u in links] for page, links in cursor.get("links", {}).items()}
    urls = [sys.intern(u) for u in cursor["link_graph"]["urls"]]
    return {urls[page]: [urls[n] for n in targets] for page, targets in cursor["link_graph"]["pages"]}

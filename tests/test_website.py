"""The website collector (harvester.collectors.website) crawling a real HTTP server on 127.0.0.1.

Each test defines a small site as a routing table (path -> (status, headers, body), or a callable
that answers the request itself), runs `collect` over it through the real safe client, and checks
what a user would notice: which pages were requested, in what order, and which Item / Seen / Gone
events and cursor came out. Nothing leaves the machine: the client only admits 127.0.0.1, and a
transport wrapper below refuses any other host outright.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

import httpx
import pytest

from harvester.collectors import CollectRequest
from harvester.collectors.website import collect, remembered_links
from harvester.config.registry import SourceSpec
from harvester.config.settings import HarvestSettings, HttpSettings, Settings
from harvester.items import Gone, Item, NextCursor, Problem, Refused, Seen
from harvester.web.client import build_client
from tests.loopback import Handler, LoopbackServer, serving

ORG = "test-school"
HTML = {"Content-Type": "text/html; charset=utf-8"}
XML = {"Content-Type": "application/xml"}
TEXT = {"Content-Type": "text/plain"}


# -- the loopback site -----------------------------------------------------------------------------

class Site(LoopbackServer):
    not_found = (404, HTML, b"<p>not found</p>")

    def page_paths(self) -> list[str]:
        """What was asked for, minus robots.txt and sitemaps."""
        return [p for p in self.paths() if p != "/robots.txt" and not p.endswith(".xml")]

    def sitemap_paths(self) -> list[str]:
        return [p for p in self.paths() if p.endswith(".xml")]


def running_site():
    return serving(Site)


@pytest.fixture
def site():
    with running_site() as s:
        yield s


@pytest.fixture
def other_site():
    with running_site() as s:
        yield s


def page(title: str, *links: str | tuple[str, str], text: str | None = None) -> tuple[int, dict, bytes]:
    """A 200 HTML page with enough text to become an Item, linking to each of `links`
    (a href, or (href, anchor words))."""
    anchors = "".join(
        f'<li><a href="{escape(href)}">{escape(words)}</a></li>'
        for href, words in ((ln, "link") if isinstance(ln, str) else ln for ln in links))
    body = (f"<html><head><title>{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>"
            f"<p>{escape(text or f'This is the {title} page of our school, written for parents and pupils.')}</p>"
            f"<ul>{anchors}</ul></main></body></html>")
    return 200, HTML, body.encode("utf-8")


def urlset(*urls: str, lastmod: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """A sitemap of `urls`, each with its <lastmod> where `lastmod` gives one."""
    dates = lastmod or {}
    locs = "".join(f"<url><loc>{escape(u)}</loc>" + (f"<lastmod>{dates[u]}</lastmod>" if u in dates else "")
                   + "</url>" for u in urls)
    return 200, XML, (f'<?xml version="1.0" encoding="UTF-8"?>'
                      f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>').encode()


def sitemap_index(*urls: str) -> tuple[int, dict, bytes]:
    locs = "".join(f"<sitemap><loc>{escape(u)}</loc></sitemap>" for u in urls)
    return 200, XML, (f'<?xml version="1.0" encoding="UTF-8"?>'
                      f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}'
                      f'</sitemapindex>').encode()


def robots(text: str) -> tuple[int, dict, bytes]:
    return 200, TEXT, text.encode()


# -- running the collector ----------------------------------------------------------------------------

class LoopbackOnly(httpx.BaseTransport):
    """A safety net inside the client's own guarded transport: nothing but this machine."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "127.0.0.1":
            raise AssertionError(f"the collector tried to leave the machine: {request.url}")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


HTTP = HttpSettings(user_agent="ccqm-test/1.0 (+https://www.example.gov.uk/ccqm-test)",
                    connect_timeout_seconds=2.0, read_timeout_seconds=2.0, deadline_seconds=5.0,
                    max_redirects=5, retries=0, backoff_seconds=0.0, allow_networks=("127.0.0.1/32",))


@pytest.fixture
def crawl(tmp_path):
    """crawl(site, pages=.., depth=.., cursor=.., validators=..) -> every event `collect` yields."""

    def run(target: Site, *, pages: int = 60, depth: int = 3, cursor: dict | None = None,
            validators: dict | None = None, **limits) -> list:
        harvest = HarvestSettings(delay_seconds=0.0, max_pages_per_site=pages, max_depth=depth, **limits)
        settings = Settings(config_dir=tmp_path, db_path=tmp_path / "x.duckdb", dossier_dir=tmp_path / "d",
                            http=HTTP, harvest=harvest)
        client = build_client(HTTP, harvest, sleep=lambda seconds: None)
        client.client._transport = LoopbackOnly(client.client._transport)  # the real guard stays inside
        request = CollectRequest(source=SourceSpec(ORG, "website", target.base + "/"), cursor=cursor or {},
                                 http=client, settings=settings, validators=validators or {})
        try:
            events = list(collect(request))
        finally:
            client.close()
        assert isinstance(events[-1], NextCursor), events[-1]
        assert sum(isinstance(e, NextCursor) for e in events) == 1
        return events

    return run


def items(events) -> list[Item]:
    return [e for e in events if isinstance(e, Item)]


def of(kind, events) -> list:
    return [e for e in events if isinstance(e, kind)]


def cursor_of(events) -> dict:
    return events[-1].value


# -- 1. the page budget -----------------------------------------------------------------------------

def test_the_page_budget_caps_the_pages_fetched(site, crawl):
    site.routes["/"] = page("Home", *(f"/p{i}" for i in range(30)))
    for i in range(30):
        site.routes[f"/p{i}"] = page(f"Page {i}", *(f"/p{j}" for j in range(30)))

    events = crawl(site, pages=5)

    assert len(site.page_paths()) == 5
    assert site.page_paths()[0] == "/"
    assert len(set(site.page_paths())) == 5  # no page asked for twice
    assert len(items(events)) == 5
    assert cursor_of(events)["pages_fetched"] == 5


# -- 2. depth ---------------------------------------------------------------------------------------

def test_pages_deeper_than_max_depth_are_never_fetched(site, crawl):
    site.routes["/"] = page("Home", "/level-one")
    site.routes["/level-one"] = page("Level one", "/level-two")
    site.routes["/level-two"] = page("Level two", "/level-three")
    site.routes["/level-three"] = page("Level three")

    events = crawl(site, depth=1)

    assert site.page_paths() == ["/", "/level-one"]
    assert {i.url for i in items(events)} == {site.url("/"), site.url("/level-one")}


def test_a_deeper_max_depth_reaches_the_deeper_page(site, crawl):
    # The control for the test above: the same site, one more level allowed.
    site.routes["/"] = page("Home", "/level-one")
    site.routes["/level-one"] = page("Level one", "/level-two")
    site.routes["/level-two"] = page("Level two", "/level-three")
    site.routes["/level-three"] = page("Level three")

    crawl(site, depth=2)

    assert site.page_paths() == ["/", "/level-one", "/level-two"]


# -- 3. priority ------------------------------------------------------------------------------------

def test_evidence_like_pages_are_fetched_before_noise(site, crawl):
    site.routes["/"] = page("Home", ("/menu", "Lunch menu"), ("/term-dates", "Term dates"),
                            ("/equality-objectives", "Our equality objectives"),
                            ("/news/ccqm-pledge", "We signed the CCQM pledge"))
    for path in ("/menu", "/term-dates", "/equality-objectives", "/news/ccqm-pledge"):
        site.routes[path] = page(path.strip("/"))

    crawl(site)

    order = site.page_paths()
    assert order[0] == "/"
    assert set(order[1:3]) == {"/equality-objectives", "/news/ccqm-pledge"}, order
    assert set(order[3:]) == {"/menu", "/term-dates"}, order


def test_priority_decides_what_a_tight_budget_keeps(site, crawl):
    # With room for two pages after the home page, the noise pages are the ones left out.
    site.routes["/"] = page("Home", ("/menu", "Lunch menu"), ("/term-dates", "Term dates"),
                            ("/equality-objectives", "Our equality objectives"),
                            ("/news/ccqm-pledge", "We signed the CCQM pledge"))
    for path in ("/menu", "/term-dates", "/equality-objectives", "/news/ccqm-pledge"):
        site.routes[path] = page(path.strip("/"))

    crawl(site, pages=3)

    assert site.page_paths() == ["/", "/news/ccqm-pledge", "/equality-objectives"]


# -- 4. sitemaps ------------------------------------------------------------------------------------

def test_pages_listed_only_in_child_sitemaps_of_an_index_are_fetched(site, crawl):
    site.routes["/robots.txt"] = robots(f"User-agent: *\nAllow: /\nSitemap: {site.url('/sitemap-index.xml')}\n")
    site.routes["/sitemap-index.xml"] = sitemap_index(site.url("/maps/a.xml"), site.url("/maps/b.xml"))
    site.routes["/maps/a.xml"] = urlset(site.url("/only-in-a"))
    site.routes["/maps/b.xml"] = urlset(site.url("/only-in-b"))
    site.routes["/"] = page("Home")  # links nothing
    site.routes["/only-in-a"] = page("Only in a")
    site.routes["/only-in-b"] = page("Only in b")

    events = crawl(site)

    assert sorted(site.sitemap_paths()) == ["/maps/a.xml", "/maps/b.xml", "/sitemap-index.xml"]
    assert "/sitemap.xml" not in site.paths()  # robots named the sitemap: no guessing
    assert sorted(site.page_paths()) == ["/", "/only-in-a", "/only-in-b"]
    assert {i.url for i in items(events)} == {site.url("/"), site.url("/only-in-a"), site.url("/only-in-b")}


def test_without_a_robots_sitemap_line_sitemap_xml_is_read(site, crawl):
    site.routes["/sitemap.xml"] = urlset(site.url("/listed"))
    site.routes["/"] = page("Home")
    site.routes["/listed"] = page("Listed")

    crawl(site)

    assert site.sitemap_paths() == ["/sitemap.xml"]
    assert sorted(site.page_paths()) == ["/", "/listed"]


def test_a_sitemap_index_chain_stops_at_twenty_sitemaps(site, crawl):
    # /chain/0.xml -> /chain/1.xml -> ... -> /chain/39.xml, each also listing one page.
    site.routes["/robots.txt"] = robots(f"User-agent: *\nSitemap: {site.url('/chain/0.xml')}\n")
    for i in range(40):
        locs = (f"<sitemap><loc>{site.url(f'/chain/{i + 1}.xml')}</loc></sitemap>"
                f"<url><loc>{site.url(f'/from-map-{i}')}</loc></url>")
        site.routes[f"/chain/{i}.xml"] = (200, XML, (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{locs}</sitemapindex>").encode())
        site.routes[f"/from-map-{i}"] = page(f"From map {i}")
    site.routes["/"] = page("Home")

    events = crawl(site, pages=100)

    assert len(site.sitemap_paths()) == 20
    assert site.sitemap_paths() == [f"/chain/{i}.xml" for i in range(20)]
    # what the twenty sitemaps listed is crawled; nothing from the unread ones
    assert sorted(site.page_paths()) == sorted(["/"] + [f"/from-map-{i}" for i in range(20)])
    assert not of(Problem, events)


def test_a_sitemap_loop_reads_each_sitemap_once(site, crawl):
    site.routes["/robots.txt"] = robots(f"User-agent: *\nSitemap: {site.url('/a.xml')}\n")
    site.routes["/a.xml"] = sitemap_index(site.url("/b.xml"))
    site.routes["/b.xml"] = sitemap_index(site.url("/a.xml"))
    site.routes["/"] = page("Home")

    crawl(site)

    assert site.sitemap_paths() == ["/a.xml", "/b.xml"]


# -- 5. scope ---------------------------------------------------------------------------------------

def test_links_and_sitemap_entries_on_another_host_are_never_fetched(site, other_site, crawl):
    other_site.routes["/equality-report"] = page("Someone else's equality report")
    site.routes["/robots.txt"] = robots(f"User-agent: *\nSitemap: {site.url('/sitemap.xml')}\n"
                                        f"Sitemap: {other_site.url('/sitemap.xml')}\n")
    site.routes["/sitemap.xml"] = urlset(other_site.url("/ccqm-news"), site.url("/local-news"))
    site.routes["/"] = page("Home", (other_site.url("/equality-report"), "Equality report CCQM pledge"),
                            ("/local-news", "News"))
    site.routes["/local-news"] = page("Local news", other_site.url("/more"))

    events = crawl(site)

    assert other_site.paths() == []  # not a page, not its robots.txt, not its sitemap
    assert sorted(site.page_paths()) == ["/", "/local-news"]
    assert all(i.url.startswith(site.base + "/") for i in items(events))
    # nor is an off-site link remembered for the next run
    remembered = [u for links in remembered_links(cursor_of(events)).values() for u in links]
    assert remembered and all(u.startswith(site.base + "/") for u in remembered)


def test_a_redirect_off_the_site_makes_no_item_and_no_alias(site, other_site, crawl):
    other_site.routes["/elsewhere"] = page("Elsewhere")
    site.routes["/"] = page("Home", ("/leave", "Equality news"))
    site.routes["/leave"] = (302, {"Location": other_site.url("/elsewhere"), **HTML}, b"")

    events = crawl(site)

    assert {i.url for i in items(events)} == {site.url("/")}
    assert cursor_of(events)["aliases"] == {}


# -- 6. robots.txt ----------------------------------------------------------------------------------

def test_paths_robots_disallows_are_never_requested(site, crawl):
    site.routes["/robots.txt"] = robots(f"User-agent: *\nDisallow: /private\n"
                                        f"Sitemap: {site.url('/sitemap.xml')}\n")
    site.routes["/sitemap.xml"] = urlset(site.url("/private/ccqm-pledge"), site.url("/public/policies"))
    site.routes["/"] = page("Home", ("/private/equality-report", "Equality report"),
                            ("/public-news", "News"))
    site.routes["/private/equality-report"] = page("Private report")
    site.routes["/private/ccqm-pledge"] = page("Private pledge")
    site.routes["/public-news"] = page("Public news")
    site.routes["/public/policies"] = page("Policies")

    events = crawl(site)

    assert site.paths()[0] == "/robots.txt"
    assert site.paths().count("/robots.txt") == 1
    assert not [p for p in site.paths() if p.startswith("/private")]
    assert sorted(site.page_paths()) == ["/", "/public-news", "/public/policies"]
    assert not of(Problem, events)  # a denial is the site's wish, not a failure
    assert cursor_of(events)["pages_fetched"] == 3  # denied pages spend none of the budget


def test_a_site_that_disallows_everything_is_not_crawled(site, crawl):
    site.routes["/robots.txt"] = robots("User-agent: *\nDisallow: /\n")
    site.routes["/"] = page("Home", "/news")
    site.routes["/news"] = page("News")

    events = crawl(site)

    assert site.paths() == ["/robots.txt"]  # not the home page, not even /sitemap.xml
    assert items(events) == []


# -- 7. redirect identity across runs -----------------------------------------------------------------

def conditional(etag: str, body: tuple[int, dict, bytes]):
    """A route answering 304 when If-None-Match carries `etag`, else the page with that ETag."""
    status, headers, content = body

    def route(handler: Handler) -> None:
        if handler.headers.get("If-None-Match") == etag:
            handler.reply(304, {"ETag": etag}, b"")
        else:
            handler.reply(status, {**headers, "ETag": etag}, content)
    return route


def test_a_redirected_page_is_known_by_its_final_url_across_runs(site, crawl):
    etag = '"v1-new"'
    site.routes["/"] = page("Home", ("/old", "Our equality report"))
    site.routes["/old"] = (301, {"Location": "/new"}, b"")
    site.routes["/new"] = conditional(etag, page("Equality report", text="Our equality report for this year."))
    old, new = site.url("/old"), site.url("/new")

    # Run 1: /old is asked for, /new is what is kept.
    first = crawl(site)
    assert site.page_paths() == ["/", "/old", "/new"]
    reports = [i for i in items(first) if i.url != site.url("/")]
    assert len(reports) == 1
    report = reports[0]
    assert (report.url, report.native_id) == (new, new)
    assert report.snapshot is not None and report.snapshot.url == new
    assert report.etag == etag
    assert not [i for i in items(first) if i.url == old or i.native_id == old]
    cursor = cursor_of(first)
    assert cursor["aliases"] == {old: new}

    # Run 2: the page is asked for conditionally under its final URL, and is still there.
    site.clear()
    second = crawl(site, cursor=cursor, validators={new: (etag, None)})
    assert "/old" not in site.page_paths()  # the alias saves the redirect hop
    asked_new = [r for r in site.received if r.path == "/new"]
    assert len(asked_new) == 1 and asked_new[0].headers.get("if-none-match") == etag
    assert of(Seen, second) == [Seen("website", new)]
    assert [i for i in items(second) if i.url in (old, new)] == []
    assert cursor_of(second)["aliases"] == {old: new}

    # Run 3: the page has been deleted; it is gone under the URL it is stored as.
    del site.routes["/new"]
    site.clear()
    third = crawl(site, cursor=cursor_of(second), validators={new: (etag, None)})
    assert of(Gone, third) == [Gone("website", new, 404)]
    assert of(Seen, third) == []
    assert [i for i in items(third) if i.url in (old, new)] == []


def test_a_304_page_still_leads_to_the_pages_it_linked_last_time(site, crawl):
    etag = '"hub-1"'
    site.routes["/"] = page("Home", ("/news", "News"))
    site.routes["/news"] = conditional(etag, page("News", ("/news/ccqm-day", "CCQM day")))
    site.routes["/news/ccqm-day"] = page("CCQM day")

    first = crawl(site)
    site.clear()
    second = crawl(site, cursor=cursor_of(first), validators={site.url("/news"): (etag, None)})

    assert of(Seen, second) == [Seen("website", site.url("/news"))]
    assert "/news/ccqm-day" in site.page_paths()
    assert site.url("/news/ccqm-day") in {i.url for i in items(second)}


# -- 8. trailing-slash redirects ----------------------------------------------------------------------

@pytest.mark.parametrize("home_links", [
    # /about first (redirected to /about/), then /about/ found later on another page
    (("/about", "About us"), ("/news", "News")),
    # /about/ asked for first, then the redirecting /about
    (("/about/", "About us"), ("/about", "About us"), ("/news", "News")),
], ids=["redirecting-link-first", "direct-link-first"])
def test_a_trailing_slash_redirect_makes_one_item(site, crawl, home_links):
    site.routes["/"] = page("Home", *home_links)
    site.routes["/news"] = page("News", ("/about/", "About the school"))
    site.routes["/about"] = (301, {"Location": "/about/"}, b"")
    site.routes["/about/"] = page("About us", text="About our school community and its values.")

    events = crawl(site)

    about = [i for i in items(events) if urlsplit(i.url).path.startswith("/about")]
    assert [(i.url, i.native_id) for i in about] == [(site.url("/about/"), site.url("/about/"))]
    assert sorted(i.url for i in items(events)) == sorted({i.url for i in items(events)})  # no duplicates
    assert cursor_of(events)["aliases"] == {site.url("/about"): site.url("/about/")}


# -- once defects, now fixed ----------------------------------------------------------------------------------

def test_a_page_that_moved_again_is_followed_from_the_link_not_reported_gone(site, crawl):
    # Run 1: /old -> /new. Then the site is reorganised: /new is deleted and /old now redirects to
    # /newest. The link on the home page still leads to live evidence.
    site.routes["/"] = page("Home", ("/old", "Our equality report"))
    site.routes["/old"] = (301, {"Location": "/new"}, b"")
    site.routes["/new"] = page("Equality report", text="Our equality report for this year.")
    first = crawl(site)
    assert cursor_of(first)["aliases"] == {site.url("/old"): site.url("/new")}

    del site.routes["/new"]
    site.routes["/old"] = (301, {"Location": "/newest"}, b"")
    site.routes["/newest"] = page("Equality report", text="Our equality report for this year, moved again.")
    site.clear()
    second = crawl(site, cursor=cursor_of(first))

    assert site.url("/newest") in {i.url for i in items(second)}, (site.page_paths(), second)


def _anchor_site(site: Site, *, with_sitemap: bool) -> None:
    # Ten pages with meaningless URLs; only the home page's link words say which one is evidence.
    plain = [f"/p{i}" for i in range(10)]
    links = [(p, "Lunch") for p in plain if p != "/p7"] + [("/p7", "Our equality objectives and CCQM pledge")]
    site.routes["/"] = page("Home", *links)
    for p in plain:
        site.routes[p] = page(f"Page {p}")
    if with_sitemap:
        site.routes["/sitemap.xml"] = urlset(*(site.url(p) for p in plain))


def test_link_words_decide_priority_for_a_site_without_a_sitemap(site, crawl):
    _anchor_site(site, with_sitemap=False)
    crawl(site, pages=2)
    assert site.page_paths() == ["/", "/p7"]


def test_link_words_still_decide_priority_when_the_sitemap_lists_the_same_pages(site, crawl):
    _anchor_site(site, with_sitemap=True)
    crawl(site, pages=2)
    assert site.page_paths() == ["/", "/p7"]


# -- 9. an evidence-first frontier: sitemap dates, generated pages, link lists ------------------------------

def dated_site(site: Site, dates: dict[str, str]) -> None:
    """A home page linking to /news/1/ .. /news/5/, all in a sitemap with the given <lastmod>s."""
    news = [f"/news/{n}/" for n in range(1, 6)]
    site.routes["/robots.txt"] = robots(f"User-agent: *\nAllow: /\nSitemap: {site.base}/sitemap.xml\n")
    site.routes["/"] = page("Home", *news)
    for path in news:
        site.routes[path] = page(f"News {path}", "/")
    site.routes["/sitemap.xml"] = urlset(*(site.url(p) for p in news),
                                         lastmod={site.url(p): d for p, d in dates.items()})


def validators_of(events) -> dict:
    return {i.url: (i.etag, i.last_modified) for i in items(events)}


NEWS_DATES = {f"/news/{n}/": f"2026-0{n}-1{n}" for n in range(1, 6)}


def test_a_recrawl_skips_the_pages_whose_sitemap_date_has_not_changed(site, crawl):
    dated_site(site, NEWS_DATES)
    first = crawl(site)
    assert len(items(first)) == 6
    site.clear()
    dated_site(site, {**NEWS_DATES, "/news/3/": "2026-11-29"})  # one page changed since
    second = crawl(site, cursor=cursor_of(first), validators=validators_of(first))
    assert site.page_paths() == ["/", "/news/3/"]  # the home page has no date: it is asked again
    assert {e.native_id for e in of(Seen, second)} == {site.url(f"/news/{n}/") for n in (1, 2, 4, 5)}
    third = crawl(site, cursor=cursor_of(second), validators=validators_of(first))
    assert len(of(Seen, third)) == 5  # the skipped pages stay remembered, run after run


def test_pages_whose_sitemap_dates_say_nothing_are_asked_for_again(site, crawl):
    same = {path: "2026-11-30" for path in NEWS_DATES}  # a sitemap stamping every page with one date
    dated_site(site, same)
    first = crawl(site)
    site.clear()
    crawl(site, cursor=cursor_of(first), validators=validators_of(first))
    assert sorted(site.page_paths()) == sorted(["/", *NEWS_DATES])


def test_a_page_skipped_for_its_date_is_read_again_after_recheck_days(site, crawl):
    dated_site(site, NEWS_DATES)
    first = crawl(site)
    cursor = cursor_of(first)
    cursor["checked"] = {url: [stamp, day - 31] for url, (stamp, day) in cursor["checked"].items()}
    site.clear()
    crawl(site, cursor=cursor, validators=validators_of(first), recheck_days=30)
    assert sorted(site.page_paths()) == sorted(["/", *NEWS_DATES])


def test_a_calendar_trap_costs_only_its_cap_and_is_reported_once(site, crawl):
    site.routes["/robots.txt"] = robots("User-agent: *\nAllow: /\n")
    months = [f"/calendar/{2020 + k // 12}/{k % 12 + 1}/" for k in range(120)]
    site.routes["/"] = page("Home", ("/calendar/2020/1/", "What's on"), "/about/")
    site.routes["/about/"] = page("About us")
    for here, following in zip(months, months[1:]):
        site.routes[here] = page(f"Calendar {here}", (following, "Next month"))
    events = crawl(site, pages=500, depth=200, max_calendar_pages=6)
    fetched = [p for p in site.page_paths() if p.startswith("/calendar/")]
    assert len(fetched) == 6
    assert "/about/" in site.page_paths()
    (refusal,) = [e for e in of(Refused, events) if "/calendar/#/#/" in e.reason]
    assert "6" in refusal.reason


def test_query_variants_of_one_path_are_capped(site, crawl):
    site.routes["/robots.txt"] = robots("User-agent: *\nAllow: /\n")
    site.routes["/"] = page("Home", *(f"/search?q=term{n}" for n in range(50)))
    site.routes["/search"] = page("Search results")
    crawl(site, pages=500, max_query_variants=5)
    assert len([p for p in site.page_paths() if p.startswith("/search")]) == 5


def test_one_url_pattern_is_capped_and_the_rest_of_the_site_is_still_crawled(site, crawl):
    site.routes["/robots.txt"] = robots("User-agent: *\nAllow: /\n")
    site.routes["/"] = page("Home", *(f"/gallery/photo-{n}/" for n in range(40)), ("/equality/", "Equality objectives"))
    for n in range(40):
        site.routes[f"/gallery/photo-{n}/"] = page(f"Photo {n}")
    site.routes["/equality/"] = page("Equality objectives", text="Our objectives for 2027: close the attainment gap.")
    crawl(site, pages=500, max_pages_per_pattern=8)
    assert len([p for p in site.page_paths() if p.startswith("/gallery/")]) == 8
    assert "/equality/" in site.page_paths()


def test_a_page_that_is_only_links_is_followed_but_not_kept_as_evidence(site, crawl):
    site.routes["/robots.txt"] = robots("User-agent: *\nAllow: /\n")
    index = [(f"/news/{n}/", f"Headline number {n} of our news") for n in range(1, 13)]
    site.routes["/"] = page("Home", ("/news/", "All news"))
    site.routes["/news/"] = page("All news", *index, text="News")
    for href, words in index:
        site.routes[href] = page(words, text=f"{words}: pupils and families met at the community centre.")
    events = crawl(site, pages=100)
    urls = {i.url for i in items(events)}
    assert site.url("/news/") not in urls  # a list of links is no evidence ...
    assert {site.url(href) for href, _ in index} <= urls  # ... but leads to it

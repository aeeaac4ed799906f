"""Every real file in ../shared/corpus through our real parsing code (hostile bodies: test_extract.py).

The corpus (real web pages, feeds, sitemaps and a robots.txt; see its README.md) sits beside the
project in development and CI but never in a user's clone: without it these tests skip, saying so.
Its files are read in place, never copied into the project.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from protego import Protego

from harvester.web import extract
from harvester.collectors.feed import parse_feed
from harvester.collectors.website import parse_sitemap
from harvester.web.extract import parse_html
from harvester.config.settings import DEFAULT_USER_AGENT

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"../shared/corpus not present: {CORPUS} sits beside the project only in development and CI")


def corpus_files(folder: str, *, exclude: tuple[str, ...] = ()) -> list[str]:
    path = CORPUS / folder
    if not path.is_dir():
        return ["(corpus absent)"]  # one placeholder, skipped by pytestmark with the reason above
    return sorted(p.name for p in path.iterdir() if p.is_file() and p.name not in exclude)


WEB_FILES = corpus_files("web", exclude=("expectations.json",))
FEED_FILES = corpus_files("feeds")
SITEMAP_FILES = corpus_files("sitemaps")


@functools.cache
def expectations() -> dict[str, dict]:
    """{page file: {"url": ..., "with": [snippets], "without": [snippets]}}"""
    return json.loads((CORPUS / "web" / "expectations.json").read_text(encoding="utf-8"))


def page_url(name: str) -> str:
    return expectations().get(name, {}).get("url") or f"https://corpus.example/{name}"


@functools.cache
def parsed(name: str) -> extract.Page:
    """A corpus page through parse_html, once per run (the snippet test reuses the results)."""
    return parse_html((CORPUS / "web" / name).read_bytes(), page_url(name))


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# -- real web pages ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", WEB_FILES)
def test_every_corpus_page_parses(name):
    page = parsed(name)
    assert isinstance(page.text, str) and isinstance(page.title, str)
    assert "\x00" not in page.text
    assert len(page.links) <= extract.MAX_LINKS
    assert all(url.startswith(("http://", "https://")) for url, _ in page.links)


def test_extraction_finds_most_expected_snippets(record_property):
    found = total = 0
    leaked = total_without = 0
    misses: dict[str, int] = {}
    for name, expected in sorted(expectations().items()):
        if not (CORPUS / "web" / name).is_file():
            continue
        text = squash(parsed(name).text)
        for snippet in expected.get("with", []):
            total += 1
            if squash(snippet) in text:
                found += 1
            else:
                misses[name] = misses.get(name, 0) + 1
        for snippet in expected.get("without", []):
            total_without += 1
            leaked += squash(snippet) in text
    rate = found / total
    record_property("with_snippet_rate", round(rate, 4))
    print(f"\ncorpus: {found}/{total} 'with' snippets found ({rate:.1%}); "
          f"{leaked}/{total_without} 'without' snippets present ({leaked / total_without:.1%}); "
          f"pages missing some: {len(misses)}")
    assert total > 500  # the expectations were read, not skipped
    assert rate >= 0.85, f"only {rate:.1%} of expected snippets found; worst pages: " + ", ".join(
        sorted(misses, key=misses.get, reverse=True)[:10])


# -- feeds, sitemaps, robots.txt --------------------------------------------------------------------

@pytest.mark.parametrize("name", FEED_FILES)
def test_every_corpus_feed_yields_items(name):
    items = parse_feed((CORPUS / "feeds" / name).read_bytes(), f"https://feeds.example/{name}",
                       org_id="t", source_id="t/feed/x", platform="feed")
    assert len(items) >= 1
    assert all(item.native_id for item in items)
    assert all(item.title or item.text for item in items)


def test_known_feed_entries_come_out_as_written():
    atom = parse_feed((CORPUS / "feeds" / "feed1.atom").read_bytes(), "https://feeds.example/feed1.atom",
                      org_id="t", source_id="t/feed/x", platform="feed")
    assert [(i.native_id, i.title) for i in atom][0] == ("http://example.org/2003/12/13/atom03",
                                                         "Atom-Powered Robots Run Amok")
    assert atom[0].published is not None
    youtube = parse_feed((CORPUS / "feeds" / "channel-videos-feed.xml").read_bytes(),
                         "https://www.youtube.com/feeds/videos.xml", org_id="t", source_id="t/feed/x",
                         platform="feed")
    assert all(i.url.startswith("https://www.youtube.com/watch?v=") for i in youtube)


@pytest.mark.parametrize("name", SITEMAP_FILES)
def test_every_corpus_sitemap_yields_urls(name):
    pages, children = parse_sitemap((CORPUS / "sitemaps" / name).read_bytes())
    assert len(pages) + len(children) >= 1
    assert all(url.startswith(("http://", "https://")) for url in pages + children)


def test_a_gzipped_sitemap_gives_the_same_urls_as_the_plain_one():
    plain = parse_sitemap((CORPUS / "sitemaps" / "sitemap.xml").read_bytes())
    packed = parse_sitemap((CORPUS / "sitemaps" / "sitemap.xml.gz").read_bytes())
    assert packed == plain and len(plain[0]) > 50


def test_a_sitemap_index_lists_child_sitemaps_not_pages():
    pages, children = parse_sitemap((CORPUS / "sitemaps" / "sitemap2.xml").read_bytes())
    assert pages == [] and len(children) == 2


def test_the_corpus_robots_txt_parses_and_answers():
    robots = Protego.parse((CORPUS / "robots" / "heritrix-selftest-robots.txt").read_text(encoding="utf-8"))
    bot = "heritrix_selftest(+http://localhost.localdomain)"
    base = "http://localhost.localdomain"
    assert not robots.can_fetch(f"{base}/RobotsExclusion/excluded.html", bot)
    assert not robots.can_fetch(f"{base}/RobotsExclusion/excluded/page.html", bot)
    assert robots.can_fetch(f"{base}/RobotsExclusion/included.html", bot)
    assert robots.can_fetch(f"{base}/RobotsExclusion/excluded.html", DEFAULT_USER_AGENT)

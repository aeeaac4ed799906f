"""Crawling many sites at once: per-host politeness under high global concurrency, through the real
harvest and real loopback servers, and the extraction pool's worker processes surviving a page that
crashes or hangs their reader."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harvester.app.harvest import harvest
from harvester.config.settings import load_settings
from harvester.errors import ContentError
from harvester.store.db import open_store
from harvester.web.extract import Page, parse_html
from harvester.web.pool import ExtractPool
from tests.conftest import write_config
from tests.loopback import Handler, LoopbackServer, serving

HTML = {"Content-Type": "text/html; charset=utf-8"}
TEXT = "Pupils and staff met families at the community centre to plan our cohesion pledge together."


class CountingSite(LoopbackServer):
    """A site that answers slowly and records the most requests it ever had in flight at once,
    and the most that all such sites had together."""

    together = {"in_flight": 0, "most": 0}
    together_lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0

    def count(self, step: int) -> None:
        with self.lock:
            self.in_flight += step
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        with self.together_lock:
            self.together["in_flight"] += step
            self.together["most"] = max(self.together["most"], self.together["in_flight"])


def slow(route: tuple[int, dict, bytes]):
    def answer(handler: Handler) -> None:
        site: CountingSite = handler.server  # type: ignore[assignment]
        site.count(+1)
        try:
            time.sleep(0.03)
            handler.reply(*route)
        finally:
            site.count(-1)
    return answer


def build(site: CountingSite, pages: int) -> None:
    links = "".join(f'<a href="/news/{n}/">News {n}</a> ' for n in range(pages))
    site.routes["/robots.txt"] = slow((200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"))
    site.routes["/"] = slow((200, HTML, f"<html><body><main><p>{TEXT}</p>{links}</main></body></html>".encode()))
    for n in range(pages):
        body = f"<html><head><title>News {n}</title></head><body><main><h1>News {n}</h1><p>{TEXT}</p></main></body></html>"
        site.routes[f"/news/{n}/"] = slow((200, HTML, body.encode()))


def test_many_sites_at_once_but_never_two_requests_in_flight_to_one_host(tmp_path):
    with serving(CountingSite) as a, serving(CountingSite) as b, serving(CountingSite) as c:
        sites = (a, b, c)
        for site in sites:
            build(site, 12)
        # four organisations on three hosts: two share one host, as schools of one trust may
        orgs = "".join(f'[[organisation]]\nid = "school-{k}"\nname = "School {k}"\nkind = "school"\n'
                       f'registered = 2026-01-01\nstep = 3\nwebsite = "{site.base}/"\n\n'
                       for k, site in enumerate((a, b, c, a)))
        config = write_config(tmp_path / "config", organisations=orgs, settings=(
            '[http]\nallow_networks = ["127.0.0.1/32"]\n'
            "[harvest]\ndelay_seconds = 0\nconcurrency = 64\nextract_workers = 1\n"))
        settings = load_settings(config, db=tmp_path / "ccqm.duckdb", out=tmp_path / "dossiers", env={})
        report = harvest(settings, settings.organisations)
    assert not report.failed, [o.errors for o in report.outcomes]
    with open_store(settings.db_path, read_only=True) as store:
        assert store.counts()["items"] == 3 * 13  # every page of every site, each once
    assert [site.most_in_flight for site in sites] == [1, 1, 1]  # polite to each host ...
    assert CountingSite.together["most"] >= 2  # ... while the hosts were crawled side by side


def reader(body: bytes, url: str, charset: str | None = None) -> Page:
    """What the workers run in these tests: the real reader, but a page may crash or hang it."""
    if b"CRASH" in body:
        os._exit(70)  # as a segfault in a parser would: the worker is gone, no exception
    if b"HANG" in body:
        time.sleep(600)
    page = parse_html(body, url, charset)
    return Page(title=f"{page.title} read by {os.getpid()}", text=page.text, published=page.published,
                links=page.links)


def html(n: int, marker: str = "") -> bytes:
    return f"<html><head><title>Page {n}</title></head><body><main><p>{TEXT} {marker}</p></main></body></html>".encode()


@pytest.fixture
def pool():
    with ExtractPool(workers=2, timeout=30.0, read=reader) as p:
        yield p


def test_pages_are_read_in_worker_processes(pool):
    readers = {pool.parse_html(html(n), f"https://school.example/{n}/").title.rsplit(" ", 1)[-1] for n in range(8)}
    assert str(os.getpid()) not in readers and readers  # not in this process
    assert pool.parse_html(html(1), "https://school.example/1/").text.startswith("Pupils and staff")


def test_a_worker_that_crashes_on_a_page_costs_that_page_only(pool):
    pages = [html(n, "CRASH" if n == 7 else "") for n in range(30)]

    def read(n: int):
        try:
            return pool.parse_html(pages[n], f"https://school.example/{n}/")
        except ContentError as exc:
            return exc

    with ThreadPoolExecutor(8) as threads:  # other pages are in flight beside it when it crashes
        results = list(threads.map(read, range(30)))
    assert isinstance(results[7], ContentError) and "crashed" in str(results[7])
    assert all(isinstance(r, Page) and r.text for n, r in enumerate(results) if n != 7)
    assert pool.parse_html(html(99), "https://school.example/99/").text  # and the pool reads on


def test_a_page_that_hangs_its_reader_is_given_up_and_the_pool_goes_on():
    with ExtractPool(workers=2, timeout=3.0, read=reader) as pool:
        assert pool.parse_html(html(0), "https://school.example/0/").text  # the workers are up
        started = time.monotonic()
        with pytest.raises(ContentError, match="over 3 s"):
            pool.parse_html(html(1, "HANG"), "https://school.example/hang/")
        assert time.monotonic() - started < 20
        assert pool.parse_html(html(2), "https://school.example/2/").text


def test_the_pool_is_thread_safe_under_many_callers(pool):
    done = []

    def read(n: int) -> None:
        done.append(pool.parse_html(html(n), f"https://school.example/{n}/").title)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(title.split()[1]) for title in done) == list(range(40))


def test_readers_killed_from_outside_are_replaced_and_no_page_is_lost(pool):
    """The OOM killer (or an operator) ends the readers between pages: the next pages are read."""
    assert pool.parse_html(html(0), "https://school.example/0/").text  # the readers are up
    for reader in list(pool._readers):
        reader.proc.kill()
    time.sleep(0.5)
    with ThreadPoolExecutor(4) as threads:
        pages = list(threads.map(lambda n: pool.parse_html(html(n), f"https://school.example/{n}/"), range(8)))
    assert [p.title.split()[1] for p in pages] == [str(n) for n in range(8)]

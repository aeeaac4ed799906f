"""The loopback world that bench/crawl.py crawls: N school-like sites of M pages each, each site
on its own loopback address, all on one port.

Site k (from 0) is http://127.0.X.Y:PORT/ with X, Y from k, from 127.0.1.1 on, so each site is a
host of its own for any crawler (Scrapy's per-domain slots are keyed by host name, so distinct
ports on one address would not be distinct sites for it). Each site has a robots.txt (allows all
but /private/, which every page links to; names the sitemap), a sitemap listing every page with
its <lastmod>, a home page and M-1 more pages (/about/ ... /vacancies/, /news/N/): a nav bar, an
article of 2-6 paragraphs of real development-set text, an aside of five links that makes every
page reachable from the home page within a few links, and a footer; 5-15 kB a page.

Every page has an ETag (a hash of its body) and a Last-Modified, and a matching If-None-Match
or If-Modified-Since gets a 304. `--changed F` gives a fixed fraction F of each site's pages new
text, validators and <lastmod>; every other page stays byte for byte what it was, so the world
can be restarted between crawls. Everything is seeded: both crawlers see the same world.

The server is asyncio HTTP/1.1 with keep-alive; every answer waits `--latency` ms first. It
prints one JSON line once it listens (port, max_depth: the most links from a home page to any
page, pages, page_bytes: their mean size) and, on SIGTERM or SIGINT, one JSON line of what it
served: requests per status and per kind, conditional requests, pages asked for more than once,
pages never asked for, and its own CPU seconds.

    python bench/crawl_world.py [--sites 50] [--pages 50] [--latency 20] [--changed 0.2] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email.utils
import functools
import hashlib
import html
import json
import random
import resource
import signal
import socket
import sys
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harvester.app.train import load_set  # noqa: E402

NAV = ("about", "admissions", "curriculum", "news", "governors", "policies", "contact", "vacancies")
ASIDE_LINKS = 5
# Pages' dates: both well in the past, since a crawler may ignore a <lastmod> in the future.
FIRST_PUBLISHED = dt.datetime(2024, 9, 2, 9, tzinfo=dt.timezone.utc)
CHANGED_ON = dt.datetime(2025, 3, 3, 9, tzinfo=dt.timezone.utc)
HTML_TYPE = "text/html; charset=utf-8"


def site_address(k: int) -> str:
    """Site k's loopback address: 127.0.1.1, 127.0.1.2, ... 127.0.1.254, 127.0.2.1, ..."""
    return f"127.0.{1 + k // 254}.{1 + k % 254}"


def site_url(k: int, port: int) -> str:
    return f"http://{site_address(k)}:{port}/"


def page_paths(pages: int) -> list[str]:
    return (["/"] + [f"/{name}/" for name in NAV] + [f"/news/{n}/" for n in range(1, pages)])[:pages]


def aside(n: int, pages: int, rng: random.Random) -> list[int]:
    """Page n's five links: its children in a five-way tree over the pages (so every page is a few
    links from the home page), topped up with other pages of the site."""
    links = [c for c in range(ASIDE_LINKS * n + 1, ASIDE_LINKS * n + ASIDE_LINKS + 1) if c < pages]
    others = [p for p in range(pages) if p != n and p not in links]
    return links + rng.sample(others, min(ASIDE_LINKS - len(links), len(others)))


def max_depth(links: list[set[int]]) -> int:
    """The most links a crawler must follow from the home page (0) to reach any page."""
    depth, queue = {0: 0}, deque([0])
    while queue:
        page = queue.popleft()
        for target in links[page]:
            if target not in depth:
                depth[target] = depth[page] + 1
                queue.append(target)
    return max(depth.values())


def changed_pages(site: int, pages: int, fraction: float) -> set[int]:
    return set(random.Random(f"changed {site}").sample(range(pages), round(fraction * pages)))


def title(path: str) -> str:
    if path == "/":
        return "Welcome"
    parts = path.strip("/").split("/")
    return f"News item {parts[1]}" if len(parts) == 2 else parts[0].title()


def render(site: int, path: str, text: list[str], links: list[str], nav: list[str]) -> bytes:
    school = f"Example School {site}"
    menu = "".join(f'<li class="menu-item"><a href="{p}">{title(p)}</a></li>' for p in nav)
    more = "".join(f'<li><a href="{p}">{title(p)}</a></li>' for p in links)
    body = "".join(f"<p>{html.escape(p)}</p>" for p in text)
    return (f'<!doctype html><html lang="en-GB"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{title(path)} | {school}</title><link rel="stylesheet" href="/assets/site.css">'
            f'<script src="/assets/site.js" defer></script></head><body>'
            f'<a class="skip-link" href="#content">Skip to content</a>'
            f'<header class="site-header"><a class="logo" href="/">{school}</a>'
            f'<nav aria-label="Main"><ul class="menu">{menu}'
            f'<li class="menu-item"><a href="/private/staff/">Staff area</a></li></ul></nav></header>'
            f'<main id="content"><article><h1>{title(path)}</h1>{body}</article>'
            f'<aside><h2>See also</h2><ul>{more}</ul></aside></main>'
            f'<footer class="site-footer"><p>{school}, 1 Example Road, Exampletown EX1 2AB. '
            f'Telephone 01234 567890. <a href="mailto:office@example.org">office@example.org</a></p>'
            f'<p>A member of the Example Learning Trust, a charity registered in England (no. 1234567). '
            f'<a href="https://www.example.org/trust/">The Trust</a></p><p>We use cookies to make this site '
            f'work.</p></footer></body></html>').encode()


@dataclass(frozen=True)
class Resource:
    body: bytes
    content_type: str
    etag: str | None = None
    modified: dt.datetime | None = None


def http_date(when: dt.datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


def build_site(site: int, port: int, pages: int, changed: float, texts: list[str]) -> tuple[dict, int]:
    """A site's resources by path, and how many links deep its deepest page is."""
    paths, fresh = page_paths(pages), changed_pages(site, pages, changed)
    nav = paths[1:len(NAV) + 1]
    rng = random.Random(f"links {site}")
    links = [aside(n, pages, rng) for n in range(pages)]
    routes, lastmods = {}, []
    for n, path in enumerate(paths):
        version = int(n in fresh)
        words = random.Random(f"text {site} {n} {version}")
        text = [" ".join(words.choices(texts, k=words.randint(3, 6))) for _ in range(words.randint(2, 6))]
        modified = (CHANGED_ON if version else FIRST_PUBLISHED) + dt.timedelta(hours=words.randrange(24 * 90))
        body = render(site, path, text, [paths[k] for k in links[n]], nav)
        routes[path] = Resource(body, HTML_TYPE, f'"{hashlib.sha1(body).hexdigest()[:20]}"', modified)
        lastmods.append(f"<url><loc>{site_url(site, port).rstrip('/')}{path}</loc>"
                        f"<lastmod>{modified:%Y-%m-%dT%H:%M:%SZ}</lastmod></url>")
    routes["/sitemap.xml"] = Resource(
        (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
         f'{"".join(lastmods)}</urlset>').encode(), "application/xml")
    routes["/robots.txt"] = Resource(
        f"User-agent: *\nDisallow: /private/\nAllow: /\n\nSitemap: {site_url(site, port)}sitemap.xml\n".encode(),
        "text/plain")
    nav_links = range(1, len(nav) + 1)  # every page's nav bar, besides its aside
    return routes, max_depth([set(links[n]).union(nav_links) for n in range(pages)])


@dataclass
class Tally:
    """What the world served."""

    status: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    pages: Counter = field(default_factory=Counter)  # (site address, path) -> GETs
    conditional: int = 0

    def count(self, site: str, method: str, path: str, status: int, conditional: bool, found: bool) -> None:
        self.status[status] += 1
        self.conditional += conditional
        if path.startswith("/private/"):
            kind = "private"
        elif not found:
            kind = "other"
        else:
            kind = {"/robots.txt": "robots", "/sitemap.xml": "sitemap"}.get(path, "page")
        self.kinds[kind] += 1
        if kind == "page" and method == "GET":
            self.pages[site, path] += 1

    def report(self, total_pages: int) -> dict:
        repeated = sorted(f"http://{site}{path}" for (site, path), n in self.pages.items() if n > 1)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"status": {str(k): v for k, v in sorted(self.status.items())}, "kinds": dict(self.kinds),
                "conditional": self.conditional, "repeats": sum(n - 1 for n in self.pages.values()),
                "repeated": repeated[:5], "missed": total_pages - len(self.pages),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1)}


def answer(routes: dict, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    """(status, headers, body) for a GET or HEAD."""
    found = routes.get(path)
    if found is None:
        return 404, {"Content-Type": "text/plain", "Content-Length": "9"}, b"not found"
    out = {"Content-Type": found.content_type}
    if found.etag:
        out |= {"ETag": found.etag, "Last-Modified": http_date(found.modified)}
        if unchanged(found, headers):
            return 304, out, b""
    out["Content-Length"] = str(len(found.body))
    return 200, out, found.body if method == "GET" else b""


def unchanged(found: Resource, headers: dict[str, str]) -> bool:
    """A 304: If-None-Match names its ETag, or (without If-None-Match) it is no newer than If-Modified-Since."""
    if "if-none-match" in headers:
        return found.etag in (tag.strip() for tag in headers["if-none-match"].split(","))
    try:
        since = email.utils.parsedate_to_datetime(headers["if-modified-since"])
    except (KeyError, TypeError, ValueError):
        return False
    return since.tzinfo is not None and found.modified <= since


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, urlsplit(target).path, version, headers


async def serve(reader, writer, *, site: str, routes: dict, latency: float, tally: Tally) -> None:
    """One connection: requests answered in turn, kept alive unless the client says otherwise."""
    try:
        while True:
            method, path, version, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
            if int(headers.get("content-length", 0)):
                await reader.readexactly(int(headers["content-length"]))
            await asyncio.sleep(latency)
            status, out, body = answer(routes, method, path, headers)
            conditional = "if-none-match" in headers or "if-modified-since" in headers
            tally.count(site, method, path, status, conditional, path in routes)
            connection = headers.get("connection", "").lower()
            keep = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
            out["Connection"] = "keep-alive" if keep else "close"
            reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
            writer.write(f"HTTP/1.1 {status} {reason}\r\n".encode()
                         + "".join(f"{k}: {v}\r\n" for k, v in out.items()).encode() + b"\r\n" + body)
            await writer.drain()
            if not keep:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass  # the client went away, or sent something that is not HTTP: the connection ends
    finally:
        writer.close()


def listen(address: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def allow_open_files(needed: int) -> None:
    """Every site listens and may hold a connection or two: raise the soft limit to fit, if need be."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        cap = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (cap, hard))


async def run(args: argparse.Namespace, texts: list[str]) -> None:
    allow_open_files(4 * args.sites + 256)
    first = listen(site_address(0), args.port)
    port = first.getsockname()[1]
    socks = [first] + [listen(site_address(k), port) for k in range(1, args.sites)]
    tally, servers, depth, sizes = Tally(), [], 0, []
    for k, sock in enumerate(socks):
        routes, deepest = build_site(k, port, args.pages, args.changed, texts)
        depth = max(depth, deepest)
        sizes += [len(r.body) for r in routes.values() if r.etag]
        servers.append(await asyncio.start_server(
            functools.partial(serve, site=f"{site_address(k)}:{port}", routes=routes, latency=args.latency / 1000,
                              tally=tally), sock=sock))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(json.dumps({"port": port, "max_depth": depth, "pages": len(sizes), "page_bytes": sum(sizes) // len(sizes)}),
          flush=True)
    await stop.wait()
    print(json.dumps(tally.report(len(sizes))), flush=True)
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--pages", type=int, default=50, help="pages a site, its home page included")
    parser.add_argument("--latency", type=float, default=20, help="ms every answer waits")
    parser.add_argument("--changed", type=float, default=0.0, help="fraction of each site's pages with new text")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    asyncio.run(run(args, [e.text for e in load_set(ROOT / "fixtures" / "labelled")]))


if __name__ == "__main__":
    main()

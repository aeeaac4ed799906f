"""The hostile site that bench/hostile.py crawls, run as its own process.

One HTTP server on one loopback address (default 127.0.0.2) serves about 20 good pages of real
development-set text and, linked from the home page and listed in the sitemap ahead of them,
every trap named in issue 14:
  - a gzip bomb streamed without end, a small one (100 kB that inflates to 100 MB), an endless chunked
    body, a 200 MB body with Content-Length, a body without length dripping one byte a second, and a
    request that hangs without ever answering;
  - a 429 storm (Retry-After: 1 on every request to some paths; a day, in seconds or as a date, on others);
  - a page with 100,000 links to distinct generated trap pages (each linking to more), a links-only
    page of about 1 MB, two endless calendars (prev/next month and `?date=` variants), a redirect loop
    and a redirect chain without end;
  - sitemap traps: robots.txt lists a sitemap index that lists itself and 5,000 child sitemaps (which
    list more), a 14.5 MB sitemap (just under the byte cap) and a .xml.gz sitemap that inflates to 60 MB;
  - SSRF redirects (301/302/303/307/308) to 127.0.0.1, localhost, the machine's own host name, [::1],
    0x7f.1, 2130706433, 127.1, 0.0.0.0, [::ffff:127.0.0.1], 10.0.0.1, 169.254.169.254, a userinfo
    trick, this machine's LAN and ULA addresses when it has them, and one two hops away.
Every address the redirects name that this machine can listen on (127.0.0.1, ::1 and the LAN
addresses) has a listener on the redirects' port, counting every connection: any count above
zero means the crawler reached a private address.

Every request is logged as JSON lines to --log: {"ev": "in"|"out", "id", "t", "wall", "path", "kind", ...}
("out" with status, bytes and seconds when the handler ends), and every forbidden connection as
{"ev": "forbidden", "t", "listener", "peer", "head"}. When ready it prints one JSON line on stdout:
{"base", "forbidden_port", "listeners", "good", "hostile", "ssrf", "ssrf_sitemaps"}. SIGTERM stops it.

    python bench/hostile_world.py [--host 127.0.0.2] --log FILE
"""

from __future__ import annotations

import argparse
import html
import http.server
import itertools
import json
import signal
import socket
import sys
import threading
import time
import zlib
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]

HTML = "text/html; charset=utf-8"
GOOD_PAGES = 20
LINKS_PAGE = 100_000  # links on /news/links/
LINKFARM_BYTES = 1_000_000  # the links-only page
SITEMAP_CHILDREN = 5_000
HUGE_SITEMAP_BYTES = 14_500_000  # just under the shipped 15 MB body cap
BOMB_SITEMAP_BYTES = 60_000_000  # inflated; the sitemap protocol's own limit is 50 MB
SMALL_BOMB_BYTES = 100 << 20  # /news/bomb-small/: ~100 kB of gzip
ENDLESS_BOMB_BYTES = 10 << 30  # /news/bomb/: 10 GB of zeros, compressed as it is sent
BIG_BYTES = 200_000_000
HANG_SECONDS = 900.0  # how long /news/hang/ holds a connection without a byte
ANCHOR = "Community news report"  # hostile links look like evidence, so they are met first
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

# Depth-1 hostile pages (path -> what it does), linked from the home page in this order.
TRAPS = {
    "/news/bomb/": "bomb", "/news/bomb-small/": "bomb", "/news/endless/": "endless", "/news/big/": "big",
    "/news/drip/": "drip", "/news/hang/": "hang",
    "/news/busy/1/": "429", "/news/busy/2/": "429", "/news/busy/3/": "429",
    "/news/busy-long/": "429", "/news/busy-date/": "429",
    "/news/links/": "links", "/news/linkfarm/": "linkfarm", "/news/events/2026/11/": "calendar",
    "/calendar/2026/11/": "calendar", "/news/loop/": "loop", "/news/chain/": "chain",
}


def kind_of(path: str) -> str:
    """What a request path is, for the logs and the report."""
    path = urlsplit(path).path
    if path in TRAPS:
        return TRAPS[path]
    for prefix, kind in (("/news/out/", "ssrf"), ("/news/2026/", "good"), ("/gen/", "gen"), ("/list/", "list"),
                         ("/news/events/", "calendar"), ("/calendar/", "calendar"), ("/news/loop/", "loop"),
                         ("/news/chain/", "chain"), ("/sitemap", "sitemap"), ("/robots.txt", "robots")):
        if path.startswith(prefix):
            return kind
    return "home" if path == "/" else "other"


def gzip_zeros(size: int) -> bytes:
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join([*(out.compress(block) for _ in range(size >> 20)), out.flush()])


def local_addresses() -> list[str]:
    """This machine's own non-loopback, non-public addresses (a LAN IPv4, a ULA IPv6), if any:
    listening there shows whether a redirect to the machine's own network is followed."""
    import ipaddress
    found = []
    for family, probe in ((socket.AF_INET, "192.0.2.123"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))  # UDP: no packet is sent, the kernel only picks a source address
                address = s.getsockname()[0]
        except OSError:
            continue
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_loopback and not ip.is_global and not ip.is_link_local and not ip.is_unspecified:
            found.append(str(ip))
    return found


class Log:
    def __init__(self, path: Path):
        self.fh = path.open("a", encoding="utf-8")
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.ids = itertools.count(1)

    def write(self, **record) -> None:
        record["t"] = round(time.monotonic() - self.start, 3)
        record["wall"] = round(time.time(), 3)
        line = json.dumps(record)
        with self.lock:
            self.fh.write(line + "\n")
            self.fh.flush()


class World:
    """The site's pages and the answers to every path."""

    def __init__(self, host: str, port: int, forbidden_port: int, texts: list[str], lan: list[str]):
        self.base = f"http://{host}:{port}"
        self.host, self.port, self.q = host, port, forbidden_port
        self.texts = texts
        self.good = [f"/news/2026/story-{n:02d}/" for n in range(GOOD_PAGES)]
        self.ssrf = self._ssrf_targets(lan)
        self.hostile = list(TRAPS) + [f"/news/out/{name}/" for name in self.ssrf]
        self.small_bomb = gzip_zeros(SMALL_BOMB_BYTES)
        self.huge_sitemap = self._huge_sitemap()
        self.bomb_sitemap = self._bomb_sitemap()
        self.links_page = self._links_page()
        self.linkfarm = self._linkfarm()

    # -- the pieces -------------------------------------------------------------------------------
    def _ssrf_targets(self, lan: list[str]) -> dict[str, tuple[int, str]]:
        q = self.q
        targets = {
            "loopback": (302, f"http://127.0.0.1:{q}/admin/"),
            "localhost": (301, f"http://localhost:{q}/"),
            "hostname": (302, f"http://{socket.gethostname()}:{q}/"),
            "ipv6-loopback": (307, f"http://[::1]:{q}/"),
            "hex": (302, f"http://0x7f.1:{q}/"),
            "decimal": (308, f"http://2130706433:{q}/"),
            "short": (302, f"http://127.1:{q}/"),
            "zero": (303, f"http://0.0.0.0:{q}/"),
            "mapped": (302, f"http://[::ffff:127.0.0.1]:{q}/"),
            "private-10": (302, f"http://10.0.0.1:{q}/"),
            "metadata": (302, "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
            "userinfo": (302, f"http://{self.host}:{self.port}@127.0.0.1:{q}/"),
            "two-hop": (302, f"{self.base}/news/out/two-hop/2/"),
        }
        try:  # the machine's own name, resolved by the system (here to loopback or a LAN address)
            socket.getaddrinfo(socket.gethostname(), None)
        except OSError:
            del targets["hostname"]
        for n, address in enumerate(lan):
            host = f"[{address}]" if ":" in address else address
            targets[f"lan-{n}"] = (302, f"http://{host}:{q}/")
        return targets

    def _page(self, title: str, body: str) -> bytes:
        nav = "".join(f'<li><a href="/{p}/">{p.title()}</a></li>' for p in ("about", "contact", "policies"))
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f'</head><body><header><nav><ul>{nav}</ul></nav></header><main>{body}</main>'
                f'<footer><p>Hostile Academy, 1 Example Road.</p></footer></body></html>').encode()

    def home(self) -> bytes:
        hostile = "".join(f'<li><a href="{p}">{ANCHOR} {n}</a></li>' for n, p in enumerate(self.hostile))
        good = "".join(f'<li><a href="{p}">Story {n}</a></li>' for n, p in enumerate(self.good))
        return self._page("Hostile Academy", f"<h1>Welcome to Hostile Academy</h1><p>{html.escape(self.texts[0])}</p>"
                                             f"<h2>Reports</h2><ul>{hostile}</ul><h2>Stories</h2><ul>{good}</ul>")

    def good_page(self, n: int) -> bytes:
        text, more = self.texts[n % len(self.texts)], self.texts[(n + GOOD_PAGES) % len(self.texts)]
        title = f"Story {n}: " + " ".join(text.split()[:8])
        return self._page(title, f"<article><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
                                 f"<p>{html.escape(more)}</p></article>")

    def sitemap(self) -> bytes:
        urls = "".join(f"<url><loc>{self.base}{p}</loc></url>" for p in self.hostile + self.good)
        return (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"{urls}</urlset>").encode()

    def sitemap_index(self, name: str, children: range) -> bytes:
        maps = [f"{self.base}{name}", f"{self.base}/sitemap-index.xml"] + [f"{self.base}/sitemaps/{n}.xml"
                                                                           for n in children]
        locs = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in maps)
        return (f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
                f'sitemap/0.9">{locs}</sitemapindex>').encode()

    def child_sitemap(self, n: int) -> bytes:
        if n % 2 == 0:  # an index of more children, and itself
            return self.sitemap_index(f"/sitemaps/{n}.xml", range(n * 10 + 1, n * 10 + 11))
        urls = "".join(f"<url><loc>{self.base}/gen/s{n}-{k}/</loc></url>" for k in range(1000))
        return (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"{urls}</urlset>").encode()

    def _urlset_bytes(self, prefix: str, size: int) -> bytes:
        head = b'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        tail = b"</urlset>"
        parts, total = [head], len(head) + len(tail)
        for i in itertools.count():
            entry = f"<url><loc>{self.base}/gen/{prefix}{i}/</loc><changefreq>daily</changefreq></url>".encode()
            if total + len(entry) > size:
                break
            parts.append(entry)
            total += len(entry)
        parts.append(tail)
        return b"".join(parts)

    def _huge_sitemap(self) -> bytes:
        return self._urlset_bytes("h", HUGE_SITEMAP_BYTES)

    def _bomb_sitemap(self) -> bytes:
        return zlib.compress(self._urlset_bytes("b", BOMB_SITEMAP_BYTES), 9, wbits=31)

    def _links_page(self) -> bytes:
        links = "".join(f'<li><a href="/gen/{i}/">Item {i}</a></li>' for i in range(LINKS_PAGE))
        return self._page("All items", f"<h1>All items</h1><ul>{links}</ul>")

    def _linkfarm(self) -> bytes:
        parts, size = [], 0
        for i in itertools.count():
            if size >= LINKFARM_BYTES:
                break
            part = f'<a href="/list/{i}/">{i}</a> '
            parts.append(part)
            size += len(part)
        return f"<!doctype html><html><body>{''.join(parts)}</body></html>".encode()

    def gen_page(self, path: str) -> bytes:
        name = path.strip("/").split("/", 1)[1]
        links = "".join(f'<li><a href="/gen/{name}-{k}/">Item {name}-{k}</a></li>' for k in range(20))
        text = self.texts[hash(name) % len(self.texts)]
        return self._page(f"Item {name}", f"<h1>Item {name}</h1><p>{html.escape(text)}</p><ul>{links}</ul>")

    def calendar(self, path: str, query: str) -> bytes | None:
        parts = path.strip("/").split("/")
        try:
            year, month = int(parts[-2]), int(parts[-1])
        except (ValueError, IndexError):
            return None
        if not 1 <= month <= 12:
            return None
        root = "/" + "/".join(parts[:-2]) + "/"
        prev = (year, month - 1) if month > 1 else (year - 1, 12)
        nxt = (year, month + 1) if month < 12 else (year + 1, 1)
        days = "".join(f'<li><a href="?date={year}-{month:02d}-{d:02d}">{d}</a> '
                       f'<a href="?date={year}-{month:02d}-{d:02d}&amp;view=week">week</a></li>' for d in range(1, 29))
        chosen = parse_qs(query).get("date", [""])[0]
        body = (f'<h1>{MONTHS[month - 1]} {year} {html.escape(chosen)}</h1><p>No events this month.</p>'
                f'<a href="{root}{prev[0]}/{prev[1]:02d}/">Previous month</a> '
                f'<a href="{root}{nxt[0]}/{nxt[1]:02d}/">Next month</a><ul>{days}</ul>')
        return self._page(f"{MONTHS[month - 1]} {year}", body)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        rid = next(server.log.ids)
        kind = kind_of(self.path)
        started = time.monotonic()
        server.log.write(ev="in", id=rid, path=self.path, kind=kind)
        self.sent, self.status = 0, 0
        try:
            self.answer(kind)
        except OSError:  # the crawler hung up: that is what most traps here are for
            self.close_connection = True
        finally:
            server.log.write(ev="out", id=rid, path=self.path, kind=kind, status=self.status, bytes=self.sent,
                             seconds=round(time.monotonic() - started, 3))

    # -- helpers ----------------------------------------------------------------------------------
    def send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.status = status
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        for name, value in headers.items():
            if value is not None:
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.sent += len(body)

    def start_stream(self, headers: dict) -> None:
        self.status = 200
        self.close_connection = True
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.sent += len(data)

    # -- the answers ------------------------------------------------------------------------------
    def answer(self, kind: str) -> None:
        world: World = self.server.world
        stop: threading.Event = self.server.stop
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        if path == "/robots.txt":
            lines = ["User-agent: *", "Allow: /"] + [f"Sitemap: {world.base}{p}" for p in
                                                    ("/sitemap.xml", "/sitemap-index.xml", "/sitemap-huge.xml",
                                                     "/sitemap-bomb.xml.gz", "/sitemap-moved.xml")]
            lines += [f"Sitemap: http://127.0.0.1:{world.q}/sitemap.xml",  # off the site: never asked for
                      "Sitemap: http://169.254.169.254/latest/meta-data/"]
            return self.send(200, ("\n".join(lines) + "\n").encode(), {"Content-Type": "text/plain"})
        if path == "/":
            return self.send(200, world.home(), {"Content-Type": HTML})
        if path == "/sitemap.xml":
            return self.send(200, world.sitemap(), {"Content-Type": "application/xml"})
        if path == "/sitemap-index.xml":
            return self.send(200, world.sitemap_index("/sitemap-index.xml", range(SITEMAP_CHILDREN)),
                             {"Content-Type": "application/xml"})
        if path.startswith("/sitemaps/") and path.endswith(".xml") and path[10:-4].isdigit():
            return self.send(200, world.child_sitemap(int(path[10:-4])), {"Content-Type": "application/xml"})
        if path == "/sitemap-moved.xml":  # a sitemap that redirects to a private address
            return self.send(301, b"", {"Location": f"http://[::1]:{world.q}/sitemap.xml"})
        if path == "/sitemap-huge.xml":
            return self.send(200, world.huge_sitemap, {"Content-Type": "application/xml"})
        if path == "/sitemap-bomb.xml.gz":
            return self.send(200, world.bomb_sitemap, {"Content-Type": "application/x-gzip"})
        if kind == "good" and path in world.good:
            n = world.good.index(path)
            body = world.good_page(n)
            if n % 3 == 0 and "gzip" in self.headers.get("Accept-Encoding", ""):
                return self.send(200, zlib.compress(body, 6, wbits=31), {"Content-Type": HTML,
                                                                          "Content-Encoding": "gzip"})
            return self.send(200, body, {"Content-Type": HTML})
        if path == "/news/bomb/":  # a gzip stream of zeros compressed as it goes: GBs for the asking
            self.start_stream({"Content-Type": HTML, "Content-Encoding": "gzip", "Connection": "close"})
            z, block = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)
            for _ in range(ENDLESS_BOMB_BYTES >> 20):
                if stop.is_set():
                    return
                out = z.compress(block)
                if out:
                    self.write(out)
            return self.write(z.flush())
        if path == "/news/bomb-small/":
            return self.send(200, world.small_bomb, {"Content-Type": HTML, "Content-Encoding": "gzip"})
        if path == "/news/endless/":  # chunked, without end
            self.start_stream({"Content-Type": HTML, "Transfer-Encoding": "chunked"})
            chunk = (b"<p>" + b"endless " * 8000 + b"</p>")
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            while not stop.is_set():
                self.write(frame)
            return
        if path == "/news/big/":  # 200 MB, declared
            self.start_stream({"Content-Type": HTML, "Content-Length": str(BIG_BYTES)})
            block = b"<p>" + b"big " * 16382 + b"</p>\n"
            left = BIG_BYTES
            while left > 0 and not stop.is_set():
                piece = block[:left]
                self.write(piece)
                left -= len(piece)
            return
        if path == "/news/drip/":  # no length; one byte a second, for ever
            self.start_stream({"Content-Type": HTML, "Connection": "close"})
            for byte in itertools.cycle(b"<p>drip</p>"):
                if stop.wait(1.0):
                    return
                self.write(bytes([byte]))
        if path == "/news/hang/":  # the request is read; no answer ever comes
            self.status = -1
            self.close_connection = True
            deadline = time.monotonic() + HANG_SECONDS
            self.connection.settimeout(1.0)
            while time.monotonic() < deadline and not stop.is_set():
                try:
                    if not self.connection.recv(1024):
                        return  # the crawler gave up and closed
                except TimeoutError:
                    continue
            return
        if path.startswith("/news/busy/"):
            return self.send(429, b"slow down", {"Retry-After": "1", "Content-Type": "text/plain"})
        if path == "/news/busy-long/":
            return self.send(429, b"slow down", {"Retry-After": "86400", "Content-Type": "text/plain"})
        if path == "/news/busy-date/":
            return self.send(429, b"slow down", {"Retry-After": formatdate(time.time() + 86400, usegmt=True),
                                                 "Content-Type": "text/plain"})
        if path == "/news/links/":
            return self.send(200, world.links_page, {"Content-Type": HTML})
        if path == "/news/linkfarm/":
            return self.send(200, world.linkfarm, {"Content-Type": HTML})
        if kind == "calendar":
            body = world.calendar(path, query)
            if body is not None:
                return self.send(200, body, {"Content-Type": HTML})
        if path in ("/news/loop/", "/news/loop/b/"):
            other = "/news/loop/b/" if path == "/news/loop/" else "/news/loop/"
            return self.send(302, b"", {"Location": other})
        if path.startswith("/news/chain/"):
            step = path[len("/news/chain/"):].strip("/")
            n = int(step) + 1 if step.isdigit() else 1
            return self.send(302, b"", {"Location": f"/news/chain/{n}/"})
        if path == "/news/out/two-hop/2/":
            return self.send(302, b"", {"Location": f"http://127.0.0.1:{world.q}/two-hop/"})
        if path.startswith("/news/out/"):
            name = path[len("/news/out/"):].strip("/")
            if name in world.ssrf:
                status, target = world.ssrf[name]
                return self.send(status, b"", {"Location": target})
        if path.startswith("/gen/") and len(path) > 6:
            return self.send(200, world.gen_page(path), {"Content-Type": HTML})
        if path.startswith("/list/"):
            return self.send(200, world._page("Nothing here", "<p>Nothing here yet.</p>"), {"Content-Type": HTML})
        return self.send(404, b"not found", {"Content-Type": "text/plain"})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, host: str, log: Log):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), Handler)
        self.log, self.stop = log, threading.Event()
        self.world: World | None = None

    def handle_error(self, request, client_address) -> None:
        pass  # a crawler hanging up mid-answer is the point of most pages here


def forbidden_listener(host: str, port: int, log: Log, stop: threading.Event) -> socket.socket | None:
    """A listener on a private address the crawler must never reach: logs and answers every connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    sock.listen(16)
    sock.settimeout(0.5)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                try:
                    head = conn.recv(2048)
                except OSError:
                    head = b""
                log.write(ev="forbidden", listener=f"{host}:{port}", peer=str(peer[0]),
                          head=head.decode("latin-1")[:300])
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 55\r\n"
                                 b"Connection: close\r\n\r\n<html><body><p>INTERNAL SECRET: 42</p></body></html>\n")
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return sock


def good_texts() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from harvester.app.train import load_set

    texts = [e.text for e in load_set(ROOT / "fixtures" / "labelled") if len(e.text) >= 300]
    return texts[:2 * GOOD_PAGES] or ["No text."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.2")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    log = Log(Path(args.log))
    stop = threading.Event()
    server = Server(args.host, log)
    server.stop = stop
    port = server.server_address[1]
    lan = local_addresses()
    # one port for every forbidden listener: 127.0.0.1, ::1 and the LAN addresses
    listeners: list[str] = []
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        q = probe.getsockname()[1]
        probe.close()
        socks = {h: forbidden_listener(h, q, log, stop) for h in ["127.0.0.1", "::1", *lan]}
        if socks["127.0.0.1"] is not None:
            listeners = [f"{h}:{q}" for h, s in socks.items() if s is not None]
            break
        for s in socks.values():
            if s is not None:
                s.close()
    else:
        sys.exit("hostile_world: no free port for the forbidden listeners")
    server.world = world = World(args.host, port, q, good_texts(), lan)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    print(json.dumps({"base": world.base, "forbidden_port": q, "listeners": listeners,
                      "good": [world.base + p for p in world.good],
                      "hostile": [world.base + p for p in world.hostile],
                      "ssrf": {name: target for name, (_, target) in world.ssrf.items()},
                      "ssrf_sitemaps": [f"{world.base}/sitemap-moved.xml"]}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    stop.set()
    server.shutdown()
    server.server_close()
    log.fh.close()


if __name__ == "__main__":
    main()

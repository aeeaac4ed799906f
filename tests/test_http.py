"""The safe HTTP client (harvester.web.client) against a real HTTP server on 127.0.0.1.

Every test talks to a real `ThreadingHTTPServer` through the real httpx transport; what the server
answers is set per test through its routing table, and what it received is recorded. Sleeps are a
recording fake (so backoff and politeness cost no time but can be checked), timeouts are tiny.
Nothing leaves the machine: the only transport wrapper here refuses any host but the loopback one,
so even a broken SSRF guard could not send a packet elsewhere.
"""

from __future__ import annotations

import email.utils
import gzip
import time
import tracemalloc
import zlib
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpcore
import httpx
import pytest

from harvester.errors import (
    BlockedURLError, DeferredError, FetchError, FetchTimeout, HTTPStatusError, RobotsDeniedError, TooLargeError,
)
from harvester.web.client import Http, build_client
from tests.loopback import Handler, LoopbackServer, drop_connection, sequence, serving
from harvester.config.settings import HarvestSettings, HttpSettings

UA = "ccqm-test/1.0 (+https://www.example.gov.uk/ccqm-test)"
LOOPBACK = ("127.0.0.1/32",)


@pytest.fixture(scope="module")
def _loopback():
    with serving() as server:
        yield server


@pytest.fixture
def server(_loopback) -> LoopbackServer:
    _loopback.reset()
    yield _loopback
    _loopback.stop.set()


# -- the client under test ----------------------------------------------------------------------------

class RecordingSleep:
    """Stands in for time.sleep: records how long the client asked to wait, waits not at all."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class LoopbackOnly(httpcore.SyncBackend):
    """A network backend refusing to connect anywhere but this machine (a safety net under the
    client's own guard, passed through httpcore's public `network_backend` seam)."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if host not in ("127.0.0.1", "::1"):
            raise AssertionError(f"the test client tried to leave the machine: {host}:{port}")
        return super().connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                   socket_options=socket_options)


BASE_HTTP = HttpSettings(user_agent=UA, connect_timeout_seconds=1.0, read_timeout_seconds=1.0,
                         deadline_seconds=5.0, max_body_bytes=100_000, max_redirects=3, retries=0,
                         backoff_seconds=0.01, max_retry_after_seconds=5.0, allow_networks=LOOPBACK)
BASE_HARVEST = HarvestSettings(delay_seconds=0.0, max_crawl_delay_seconds=30.0)


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_http(sleeps):
    made: list[Http] = []

    def make(*, harvest: HarvestSettings = BASE_HARVEST, resolve=None, sleep=None, **http_overrides) -> Http:
        client = build_client(replace(BASE_HTTP, **http_overrides), harvest, resolve=resolve, sleep=sleep or sleeps,
                              network_backend=LoopbackOnly())
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def fake_resolver(table: dict[str, list[str]]):
    """A resolver for made-up host names, so no test needs DNS."""
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"could not resolve host {host!r} (not in the test's table)")
        return table[host]
    return resolve


# -- 1. the SSRF guard ------------------------------------------------------------------------------

def test_loopback_is_blocked_without_allow_networks_and_nothing_is_sent(server, make_http):
    server.routes["/"] = (200, {}, b"internal")
    http = make_http(allow_networks=())
    with pytest.raises(BlockedURLError, match="not public"):
        http.get(server.base + "/")
    with pytest.raises(BlockedURLError):
        http.get_json(server.base + "/api")
    assert server.paths() == []


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://127.0.0.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f000001/",  # hex 127.0.0.1
    "http://0177.0.0.1/",  # octal 127.0.0.1
    "http://127.1/",
    "http://0/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://user:secret@127.0.0.1/",
])
def test_check_url_blocks_addresses_that_are_not_public(make_http, url):
    # Literal addresses only: the real resolver turns them into addresses without asking DNS.
    http = make_http(allow_networks=())
    with pytest.raises(BlockedURLError, match="not public"):
        http.check_url(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/", "gopher://127.0.0.1:70/",
                                 "javascript:alert(1)", "//example.org/"])
def test_check_url_blocks_schemes_other_than_http(make_http, url):
    http = make_http(allow_networks=(), resolve=fake_resolver({}))
    with pytest.raises(BlockedURLError, match="scheme"):
        http.check_url(url)


def test_check_url_judges_host_names_by_every_address_they_resolve_to(make_http):
    http = make_http(allow_networks=(), resolve=fake_resolver({
        "evil.example": ["10.0.0.5"],
        "public.example": ["93.184.216.34"],
        "mixed.example": ["93.184.216.34", "127.0.0.1"],
        "mapped.example": ["::ffff:10.0.0.5"],
    }))
    with pytest.raises(BlockedURLError):
        http.check_url("http://evil.example/")
    with pytest.raises(BlockedURLError):
        http.check_url("https://mixed.example/page")
    with pytest.raises(BlockedURLError):
        http.check_url("http://mapped.example/")
    assert http.check_url("https://public.example/about") is None
    with pytest.raises(FetchError, match="could not resolve") as caught:
        http.check_url("http://nowhere.example/")
    assert not isinstance(caught.value, BlockedURLError)


def test_allow_networks_admits_only_the_networks_listed(make_http):
    http = make_http(allow_networks=LOOPBACK)
    assert http.check_url("http://127.0.0.1:8080/") is None
    with pytest.raises(BlockedURLError):
        http.check_url("http://127.0.0.2/")
    with pytest.raises(BlockedURLError):
        http.check_url("http://[::ffff:127.0.0.1]/")
    with pytest.raises(BlockedURLError):
        http.check_url("http://169.254.169.254/")


def rebinding_resolver(first: list[str], then: list[str]):
    """A DNS answer that changes after the first lookup, as a rebinding attacker's does."""
    answers = iter([first])
    return lambda host: next(answers, then)


def test_a_rebinding_host_is_checked_again_when_the_connection_opens(server, sleeps):
    # The first answer passes the check; the second, at connection time, is a private address.
    http = build_client(replace(BASE_HTTP, allow_networks=("127.0.0.1/32",)), BASE_HARVEST,
                        resolve=rebinding_resolver(["127.0.0.1"], ["10.0.0.5"]), sleep=sleeps)
    try:
        with pytest.raises(BlockedURLError, match="10.0.0.5"):
            http.get(f"http://rebind.test:{server.server_address[1]}/secret", robots=False)
    finally:
        http.close()
    assert server.paths() == []


def test_the_connection_goes_to_the_checked_address_not_a_fresh_lookup(server, sleeps):
    # 'intranet.test' exists only in our resolver: reaching the server proves the checked address was used.
    server.routes["/page"] = (200, {}, b"reached")
    http = build_client(replace(BASE_HTTP, allow_networks=("127.0.0.1/32",)), BASE_HARVEST,
                        resolve=fake_resolver({"intranet.test": ["127.0.0.1"]}), sleep=sleeps)
    try:
        response = http.get(f"http://intranet.test:{server.server_address[1]}/page", robots=False)
    finally:
        http.close()
    assert response.body == b"reached"


# -- 2. redirects -----------------------------------------------------------------------------------

def test_redirects_on_an_allowed_host_are_followed(server, make_http):
    server.routes["/old"] = (301, {"Location": "/new"}, b"")
    server.routes["/new"] = (200, {"Content-Type": "text/html"}, b"<p>moved here</p>")
    response = make_http().get(server.base + "/old")
    assert response.status == 200
    assert response.url == server.base + "/new"
    assert response.body == b"<p>moved here</p>"


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
                                    "http://[::ffff:127.0.0.1]/", "http://10.1.2.3/"])
def test_a_redirect_to_a_forbidden_url_is_blocked(server, make_http, target):
    server.routes["/go"] = (302, {"Location": target}, b"")
    with pytest.raises(BlockedURLError):
        make_http().get(server.base + "/go")
    assert server.paths() == ["/robots.txt", "/go"]


def test_a_redirect_loop_is_an_error_naming_redirects(server, make_http):
    server.routes["/a"] = (302, {"Location": "/b"}, b"")
    server.routes["/b"] = (302, {"Location": "/a"}, b"")
    with pytest.raises(FetchError, match="redirect"):
        make_http().get(server.base + "/a", robots=False)
    assert server.paths() == ["/a", "/b"]


def test_a_redirect_loop_is_not_retried(server, make_http, sleeps):
    server.routes["/a"] = (302, {"Location": "/b"}, b"")
    server.routes["/b"] = (302, {"Location": "/a"}, b"")
    with pytest.raises(FetchError, match="redirect"):
        make_http(retries=2).get(server.base + "/a", robots=False)
    assert server.paths() == ["/a", "/b"]
    assert sleeps.calls == []


def chain(server: LoopbackServer, hops: int) -> None:
    """/r0 -> /r1 -> ... -> /r{hops}, which answers 200."""
    for i in range(hops):
        server.routes[f"/r{i}"] = (302, {"Location": f"/r{i + 1}"}, b"")
    server.routes[f"/r{hops}"] = (200, {}, b"end")


def test_exactly_max_redirects_hops_are_followed(server, make_http):
    chain(server, 3)
    response = make_http(max_redirects=3).get(server.base + "/r0", robots=False)
    assert (response.status, response.body) == (200, b"end")


def test_more_than_max_redirects_hops_is_an_error(server, make_http):
    chain(server, 4)
    with pytest.raises(FetchError, match="more than 3 redirects"):
        make_http(max_redirects=3).get(server.base + "/r0", robots=False)
    assert "/r4" not in server.paths()


# -- 3. the body cap --------------------------------------------------------------------------------

def close_delimited(size: int):
    """A body of `size` bytes with no Content-Length, ended by closing the connection."""
    def route(handler: Handler) -> None:
        handler.close_connection = True
        handler.reply(200, {"Content-Length": None, "Connection": "close"}, b"x" * size)
    return route


def chunked(size: int, chunk: int = 8192):
    def route(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for start in range(0, size, chunk):
            part = b"x" * min(chunk, size - start)
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        handler.wfile.write(b"0\r\n\r\n")
    return route


@pytest.mark.parametrize("framing", [close_delimited, chunked])
def test_a_body_over_the_cap_without_content_length_is_too_large(server, make_http, framing):
    server.routes["/big"] = framing(100_001)
    server.routes["/fits"] = framing(100_000)
    http = make_http(max_body_bytes=100_000)
    with pytest.raises(TooLargeError):
        http.get(server.base + "/big", robots=False)
    assert len(http.get(server.base + "/fits", robots=False).body) == 100_000


def test_a_declared_content_length_over_the_cap_is_too_large(server, make_http):
    server.routes["/big"] = (200, {}, b"x" * 150_000)
    with pytest.raises(TooLargeError, match="150000 bytes"):
        make_http(max_body_bytes=100_000).get(server.base + "/big", robots=False)


def test_a_gzip_bomb_is_too_large_after_decompression(server, make_http):
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 100_000  # small on the wire
    server.routes["/bomb"] = (200, {"Content-Encoding": "gzip", "Content-Type": "text/html"}, bomb)
    with pytest.raises(TooLargeError):
        make_http(max_body_bytes=100_000).get(server.base + "/bomb", robots=False)


def gzip_zeros(size: int) -> bytes:
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join([*(out.compress(block) for _ in range(size >> 20)), out.flush()])


@pytest.mark.parametrize("encoding, body, error", [
    ("gzip", lambda: gzip_zeros(64 << 20), TooLargeError),
    ("gzip, gzip", lambda: gzip.compress(gzip_zeros(64 << 20)), FetchError),  # stacked: refused outright
])
def test_a_gzip_bomb_never_inflates_past_the_cap_in_memory(server, make_http, encoding, body, error):
    server.routes["/bomb"] = (200, {"Content-Encoding": encoding}, body())
    http = make_http(max_body_bytes=1_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(error):
            http.get(server.base + "/bomb", robots=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16_000_000, f"peak {peak / 1e6:.0f} MB held for a 1 MB cap"


# -- 4. time limits ---------------------------------------------------------------------------------

def test_a_server_that_never_answers_times_out_after_the_read_timeout(server, make_http):
    server.routes["/hang"] = lambda handler: server.stop.wait(10)
    http = make_http(read_timeout_seconds=0.5, retries=0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        http.get(server.base + "/hang", robots=False)
    assert 0.4 <= time.monotonic() - started < 2.0


def dripping_body(handler: Handler) -> None:
    """Headers at once, then one body byte every 0.1 s."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    for _ in range(100):
        if handler.server.stop.wait(0.1):
            return
        try:
            handler.wfile.write(b"x")
        except OSError:
            return


def dripping_headers(handler: Handler) -> None:
    """The status line at once, then one header byte every 0.1 s for 2 s, then a small body."""
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(20):
            if handler.server.stop.wait(0.1):
                return
            handler.wfile.write(b"a")
        handler.wfile.write(b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    except OSError:
        pass
    handler.close_connection = True


def test_a_body_trickling_in_is_cut_at_the_deadline(server, make_http):
    server.routes["/drip"] = dripping_body
    http = make_http(read_timeout_seconds=0.5, deadline_seconds=0.5, retries=0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="longer than"):
        http.get(server.base + "/drip", robots=False)
    assert time.monotonic() - started < 1.5


def test_headers_trickling_in_are_cut_at_the_deadline(server, make_http):
    server.routes["/drip"] = dripping_headers
    http = make_http(read_timeout_seconds=0.5, deadline_seconds=0.5, retries=0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="longer than 0.5 s"):
        http.get(server.base + "/drip", robots=False)
    assert time.monotonic() - started < 1.5


# -- 5. retries -------------------------------------------------------------------------------------

def test_429_waits_the_retry_after_then_succeeds(server, make_http, sleeps):
    server.routes["/page"] = sequence((429, {"Retry-After": "3"}, b""), (200, {}, b"fine"))
    response = make_http(retries=2, max_retry_after_seconds=120.0).get(server.base + "/page")
    assert (response.status, response.body) == (200, b"fine")
    assert sleeps.calls == [3.0]
    assert server.paths() == ["/robots.txt", "/page", "/page"]


def test_a_retry_after_over_the_cap_defers_the_url_without_sleeping(server, make_http, sleeps):
    server.routes["/page"] = sequence((429, {"Retry-After": "3600"}, b""), (200, {}, b"fine"))
    with pytest.raises(DeferredError, match="3600 s, over the 5 s cap: deferred to the next run"):
        make_http(retries=2, max_retry_after_seconds=5.0).get(server.base + "/page", robots=False)
    assert sleeps.calls == [] and server.paths() == ["/page"]


def test_a_server_that_never_answers_costs_at_most_two_attempts(server, make_http, sleeps):
    server.routes["/hang"] = lambda handler: server.stop.wait(5)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        make_http(retries=3, read_timeout_seconds=0.3).get(server.base + "/hang", robots=False)
    assert server.paths() == ["/hang", "/hang"]  # one try and one retry, though retries = 3
    assert time.monotonic() - started < 2.0


def test_retry_after_as_an_http_date(server, make_http, sleeps):
    when = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=10), usegmt=True)
    server.routes["/page"] = sequence((503, {"Retry-After": when}, b""), (200, {}, b"fine"))
    assert make_http(retries=1, max_retry_after_seconds=120.0).get(server.base + "/page", robots=False).status == 200
    assert len(sleeps.calls) == 1 and 8.0 < sleeps.calls[0] <= 10.0


def test_a_503_every_time_fails_after_the_configured_retries(server, make_http, sleeps):
    server.routes["/down"] = (503, {}, b"down")
    with pytest.raises(HTTPStatusError) as caught:
        make_http(retries=2, backoff_seconds=1.0).get(server.base + "/down", robots=False)
    assert caught.value.status == 503
    assert server.paths().count("/down") == 3  # the first try and two retries
    assert len(sleeps.calls) == 2
    assert 0.5 <= sleeps.calls[0] <= 1.5 and 1.0 <= sleeps.calls[1] <= 3.0  # exponential, with jitter


def test_a_dropped_connection_is_retried(server, make_http):
    server.routes["/flaky"] = sequence(drop_connection, (200, {}, b"back"))
    response = make_http(retries=1).get(server.base + "/flaky", robots=False)
    assert response.body == b"back"
    assert server.paths() == ["/flaky", "/flaky"]


def test_a_retry_after_date_in_the_past_retries_at_once(server, make_http, sleeps):
    when = email.utils.format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True)
    server.routes["/page"] = sequence((503, {"Retry-After": when}, b""), (200, {}, b"fine"))
    assert make_http(retries=1).get(server.base + "/page", robots=False).status == 200
    assert sleeps.calls == [0.0]


def test_what_cannot_change_is_never_retried(server, make_http, sleeps):
    """Only timeouts, failed connections, 5xx and 429 are worth another try."""
    server.routes["/stacked"] = (200, {"Content-Encoding": "gzip, gzip"}, gzip.compress(gzip.compress(b"x")))
    http = make_http(retries=3, resolve=fake_resolver({}))
    with pytest.raises(FetchError, match="stacked"):
        http.get(server.base + "/stacked", robots=False)
    with pytest.raises(FetchError, match="could not resolve"):
        http.get("http://nowhere.example/", robots=False)
    assert server.paths() == ["/stacked"] and sleeps.calls == []


def test_a_timeout_is_retried(server, make_http, sleeps):
    server.routes["/slow"] = sequence(lambda handler: time.sleep(0.6), (200, {}, b"quick now"))
    response = make_http(retries=1, read_timeout_seconds=0.3).get(server.base + "/slow", robots=False)
    assert response.body == b"quick now" and server.paths() == ["/slow", "/slow"]


def test_a_transport_passed_in_keeps_the_address_policy(sleeps):
    """The documented test seam (a transport, as respx gives) cannot drop the guard."""
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, stream=httpx.ByteStream(b"ok"))

    http = build_client(replace(BASE_HTTP, allow_networks=()), BASE_HARVEST, transport=httpx.MockTransport(handler),
                        resolve=fake_resolver({"public.example": ["93.184.216.34"], "inside.example": ["10.1.2.3"]}),
                        sleep=sleeps)
    with pytest.raises(BlockedURLError, match="10.1.2.3"):
        http.get("http://inside.example/", robots=False)
    with pytest.raises(BlockedURLError):
        http.client.get("http://169.254.169.254/latest/")  # even bypassing Http.get, the transport refuses
    assert http.get("http://public.example/", robots=False).body == b"ok"
    assert sent == ["http://public.example/"]


# -- 6. robots.txt ----------------------------------------------------------------------------------

def test_a_path_robots_disallows_is_never_requested(server, make_http):
    server.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private\n")
    server.routes["/private/report"] = (200, {}, b"secret")
    server.routes["/public"] = (200, {}, b"hello")
    http = make_http()
    with pytest.raises(RobotsDeniedError):
        http.get(server.base + "/private/report")
    assert http.get(server.base + "/public").body == b"hello"
    assert server.paths() == ["/robots.txt", "/public"]  # robots.txt read once, the private page never


def test_robots_rules_for_our_user_agent_apply(server, make_http):
    server.routes["/robots.txt"] = (200, {}, b"User-agent: ccqm-test\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    server.routes["/page"] = (200, {}, b"hello")
    with pytest.raises(RobotsDeniedError):
        make_http().get(server.base + "/page")
    assert "/page" not in server.paths()


def test_api_calls_bypass_robots(server, make_http):
    server.routes["/robots.txt"] = (200, {}, b"User-agent: *\nDisallow: /\n")
    server.routes["/api/items"] = (200, {"Content-Type": "application/json"}, b'{"items": [1, 2]}')
    http = make_http()
    assert http.get(server.base + "/api/items", robots=False).status == 200
    data, response = http.get_json(server.base + "/api/items", params={"limit": "2"})
    assert data == {"items": [1, 2]}
    assert server.paths() == ["/api/items", "/api/items?limit=2"]  # robots.txt not even asked
    assert server.received[-1].headers["accept"] == "application/json"


def test_an_unreadable_robots_txt_denies_the_whole_site_and_says_why(server, make_http):
    server.routes["/robots.txt"] = (503, {}, b"")
    server.routes["/"] = (200, {}, b"home")
    server.routes["/about"] = (200, {}, b"about")
    http = make_http()
    for path in ("/", "/about"):
        with pytest.raises(RobotsDeniedError, match="robots.txt could not be read"):
            http.get(server.base + path)
    assert server.paths() == ["/robots.txt"]
    error = http.robots.error(server.base + "/about")
    assert error is not None and "503" in error


def test_a_missing_robots_txt_allows_everything(server, make_http):
    server.routes["/robots.txt"] = (404, {}, b"")
    server.routes["/anything/at/all"] = (200, {}, b"ok")
    http = make_http()
    assert http.get(server.base + "/anything/at/all").body == b"ok"
    assert http.robots.error(server.base + "/") is None


def test_a_forbidden_robots_txt_allows_everything(server, make_http):
    server.routes["/robots.txt"] = (403, {}, b"")
    server.routes["/page"] = (200, {}, b"ok")
    assert make_http().get(server.base + "/page").body == b"ok"


# -- 7. statuses ------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [404, 410])
def test_gone_pages_are_returned_not_raised(server, make_http, status):
    server.routes["/old"] = (status, {}, b"gone")
    response = make_http(retries=2).get(server.base + "/old")
    assert response.status == status
    assert server.paths().count("/old") == 1


def test_403_raises_and_is_not_retried(server, make_http, sleeps):
    server.routes["/no"] = (403, {}, b"forbidden")
    with pytest.raises(HTTPStatusError) as caught:
        make_http(retries=2).get(server.base + "/no")
    assert caught.value.status == 403
    assert server.paths().count("/no") == 1
    assert sleeps.calls == []


def test_get_json_rejects_a_body_that_is_not_json(server, make_http):
    server.routes["/api"] = (200, {"Content-Type": "application/json"}, b"<html>oops</html>")
    with pytest.raises(FetchError, match="malformed JSON"):
        make_http().get_json(server.base + "/api")


# -- 8. identity ------------------------------------------------------------------------------------

def test_every_request_carries_the_configured_user_agent(server, make_http):
    server.routes["/page"] = (200, {}, b"ok")
    server.routes["/api"] = (200, {}, b"{}")
    http = make_http()
    http.get(server.base + "/page")
    http.get_json(server.base + "/api")
    assert [r.path for r in server.received] == ["/robots.txt", "/page", "/api"]
    assert {r.headers["user-agent"] for r in server.received} == {UA}


# -- 9. politeness ----------------------------------------------------------------------------------

def test_a_second_request_to_the_same_host_waits_the_delay(server, make_http, sleeps):
    server.routes["/a"] = (200, {}, b"a")
    server.routes["/b"] = (200, {}, b"b")
    http = make_http(harvest=replace(BASE_HARVEST, delay_seconds=0.2),
                     resolve=fake_resolver({"127.0.0.1": ["127.0.0.1"], "localhost": ["127.0.0.1"]}))
    http.get(server.base + "/a", robots=False)
    assert sleeps.calls == []
    http.get(server.base + "/b", robots=False)
    assert len(sleeps.calls) == 1 and 0.1 < sleeps.calls[0] <= 0.2
    # another host has its own turn
    http.get(f"http://localhost:{server.server_address[1]}/a", robots=False)
    assert len(sleeps.calls) == 1


def test_requests_to_one_host_arrive_at_least_the_delay_apart(server, make_http):
    server.routes["/a"] = (200, {}, b"a")
    http = make_http(harvest=replace(BASE_HARVEST, delay_seconds=0.2), sleep=time.sleep)
    for _ in range(3):
        http.get(server.base + "/a", robots=False)
    times = [r.at for r in server.received]
    assert all(later - earlier >= 0.18 for earlier, later in zip(times, times[1:])), times


@pytest.mark.parametrize("crawl_delay, cap, expected", [(2, 30.0, 2.0), (100, 1.5, 1.5)])
def test_robots_crawl_delay_spaces_requests_up_to_the_cap(server, make_http, sleeps, crawl_delay, cap, expected):
    server.routes["/robots.txt"] = (200, {}, b"User-agent: *\nCrawl-delay: %d\n" % crawl_delay)
    server.routes["/a"] = (200, {}, b"a")
    server.routes["/b"] = (200, {}, b"b")
    http = make_http(harvest=replace(BASE_HARVEST, delay_seconds=0.0, max_crawl_delay_seconds=cap))
    http.get(server.base + "/a")
    http.get(server.base + "/b")
    assert len(sleeps.calls) == 1
    assert expected - 0.1 < sleeps.calls[0] <= expected

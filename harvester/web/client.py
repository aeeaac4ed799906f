"""The one HTTP seam: every request ccqm makes goes through `build_client`.

Organisations supply their own URLs, so every URL is untrusted. The client:
  - fetches only what the address policy (`web.guard`) allows: http(s) URLs whose host resolves
    to public addresses only, or to a network in `http.allow_networks`. The check runs on every
    redirect hop, and again when a connection opens, which goes to the address that passed (so DNS
    rebinding cannot swap in a private address in between); a transport passed in (respx, tests)
    is wrapped so that every request through it is checked too;
  - follows at most `max_redirects` redirects itself;
  - caps the body on the wire and after decompression, which it does itself, a bounded chunk at a
    time (httpx would inflate a gzip bomb whole before any cap could look), and cuts every socket
    read and write at the request's deadline;
  - retries only what may change: failed connections, 5xx and 429, with exponential backoff and
    jitter, and a timeout once at most; never a refusal, a bad body or a host that does not
    resolve. A `Retry-After` within the cap is waited; one beyond it defers the URL to the next
    run (`DeferredError`) instead of sleeping, so no site holds the run;
  - waits `delay_seconds` (or robots' Crawl-delay) between requests to one host;
  - sends our User-Agent, and asks robots.txt before fetching a page (not for API calls).
The connection pool is httpcore's, built on its public `network_backend` argument; tests pass a
transport (respx) or a network backend in. Nothing else in ccqm builds an httpx client.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import random
import threading
import time
import zlib
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from harvester.config.settings import HarvestSettings, HttpSettings
from harvester.errors import (
    BlockedURLError, DeadlineError, DeferredError, FetchError, FetchTimeout, HTTPStatusError, RedirectError, RobotsDeniedError,
    TooLargeError, TransientFetchError,
)
from harvester.items import RawRecord, utcnow
from harvester.web.guard import Network, Resolver, literal_address, parse_networks, refusal, system_resolver, url_refusal
from harvester.web.robots import RobotsCache


class AddressPolicy:
    """The guard with its resolver: `check_url` before a request, `connect_address` as a
    connection opens (always a fresh lookup, so a rebinding answer is judged again)."""

    def __init__(self, allowed: tuple[Network, ...], resolve: Resolver = system_resolver):
        self.allowed, self.resolve = allowed, resolve

    def check_url(self, url: str) -> None:
        why = url_refusal(url, self.allowed)
        if why:
            raise BlockedURLError(why, url=url)
        self.connect_address(urlsplit(url).hostname or "", url)

    def connect_address(self, host: str, url: str) -> str:
        """Resolve `host`; return an address to connect to if every address it has is allowed."""
        literal = literal_address(host)
        try:
            addresses = [literal] if literal else self.resolve(host)
        except OSError as exc:
            raise FetchError(str(exc), url=url) from None
        if not addresses:
            raise FetchError("host has no address", url=url)
        for address in addresses:
            why = refusal(address, self.allowed)
            if why:
                raise BlockedURLError(why, url=url)
        return addresses[0]


@dataclass(frozen=True)
class Response:
    """A fetched response with its whole (capped) body, decoded, and `record`: the response as it
    was received (status line, every header as sent, the body still content-encoded), which
    collectors hand on with their snapshots so the store keeps it."""

    url: str  # after redirects
    status: int
    headers: dict[str, str]  # names lower-cased, repeats joined (as httpx joins them)
    body: bytes  # Content-Encoding undone
    fetched_at: dt.datetime
    record: RawRecord | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip('"') or None
        return None


@dataclass
class Http:
    """The safe client. Build it with `build_client`; close it when done."""

    settings: HttpSettings
    harvest: HarvestSettings
    client: httpx.Client
    policy: AddressPolicy
    sleep: Callable[[float], None] = time.sleep
    robots: RobotsCache = field(init=False)
    _next_slot: dict[str, float] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _hosts: dict[str, threading.Lock] = field(default_factory=dict, init=False)  # one request in flight each

    def __post_init__(self) -> None:
        self.robots = RobotsCache(lambda url: self.get(url, robots=False), self.settings.user_agent)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Http":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check_url(self, url: str) -> None:
        """Raise BlockedURLError unless `url` is http(s) and every address of its host is allowed."""
        self.policy.check_url(url)

    # -- politeness ------------------------------------------------------------------------------
    @contextmanager
    def _turn(self, url: str):
        """Hold the host's turn for one request: never two requests in flight to one host, however
        many sites the harvest reads at once, and `delay_seconds` (or robots' Crawl-delay) from the
        end of one to the start of the next."""
        host = urlsplit(url).netloc.lower()
        delay = max(self.harvest.delay_seconds,
                    min(self.robots.crawl_delay(url) or 0.0, self.harvest.max_crawl_delay_seconds))
        with self._lock:
            turn = self._hosts.setdefault(host, threading.Lock())
        with turn:
            wait = self._next_slot.get(host, 0.0) - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            try:
                yield
            finally:
                self._next_slot[host] = time.monotonic() + delay

    # -- fetching --------------------------------------------------------------------------------
    def get(self, url: str, *, headers: dict[str, str] | None = None, params: dict | None = None,
            robots: bool = True) -> Response:
        """GET with every rule applied. Returns 2xx, 304, 404 and 410 responses; raises otherwise."""
        if params:
            url = str(httpx.URL(url).copy_merge_params(params))  # keeps a query the URL already has
        attempt = 0
        while True:
            try:
                response = self._get_following(url, headers or {}, robots)
            except FetchError as exc:
                limit = min(self.settings.retries, getattr(exc, "max_retries", self.settings.retries))
                if not exc.retryable or attempt >= limit:
                    raise
                wait = getattr(exc, "retry_after", None)
                if wait is not None and wait > self.settings.max_retry_after_seconds:
                    raise DeferredError(f"HTTP {exc.status} asks to wait {wait:g} s, over the "
                                        f"{self.settings.max_retry_after_seconds:g} s cap: deferred to the next run",
                                        url=exc.url) from None
                self.sleep(self._backoff(attempt, wait))
                attempt += 1
                continue
            return response

    def get_json(self, url: str, *, params: dict | None = None, headers: dict[str, str] | None = None):
        """GET an API URL (robots.txt does not govern APIs) and parse its JSON body."""
        response = self.get(url, params=params, headers={"Accept": "application/json", **(headers or {})},
                            robots=False)
        if response.status >= 400:
            raise HTTPStatusError(f"HTTP {response.status}", url=response.url, status=response.status,
                                  body=response.body, headers=response.headers)
        try:
            return json.loads(response.body), response
        except ValueError as exc:
            raise FetchError(f"malformed JSON ({exc})", url=response.url) from None

    def post_json(self, url: str, *, body: dict, headers: dict[str, str] | None = None):
        """POST JSON to an API (a login, a token refresh) through the same address policy, byte cap
        and deadline; never retried, never redirected: a credential is not sent twice blindly."""
        self.check_url(url)
        cap = self.settings.max_body_bytes
        try:
            with self._turn(url), self.client.stream("POST", url, json=body,
                                                     headers={"Accept": "application/json", **(headers or {})}) as r:
                chunks, size = [], 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise TooLargeError(f"body is over the {cap}-byte cap", url=url)
                    chunks.append(chunk)
                status, resp_headers = r.status_code, {k.lower(): v for k, v in r.headers.items()}
        except httpx.TimeoutException:
            raise FetchTimeout("timed out", url=url) from None
        except httpx.TransportError as exc:
            raise TransientFetchError(f"connection failed ({exc.__class__.__name__})", url=url) from None
        raw = b"".join(chunks)
        if status >= 300:
            raise HTTPStatusError(f"HTTP {status}", url=url, status=status, body=raw, headers=resp_headers)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise FetchError(f"malformed JSON ({exc})", url=url) from None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return self.settings.backoff_seconds * (2 ** attempt) * random.uniform(0.5, 1.5)

    def _get_following(self, url: str, headers: dict[str, str], robots: bool) -> Response:
        deadline = time.monotonic() + self.settings.deadline_seconds
        seen: set[str] = set()
        for _ in range(self.settings.max_redirects + 1):
            self.check_url(url)
            if robots and not self.robots.allowed(url):
                unreadable = self.robots.error(url)
                if unreadable:  # the site is down or broken: say so, rather than "the site says no"
                    raise RobotsDeniedError(f"robots.txt could not be read ({unreadable})", url=url)
                raise RobotsDeniedError("disallowed by robots.txt", url=url)
            if url in seen:
                raise RedirectError("redirect loop", url=url)
            seen.add(url)
            with self._turn(url):
                response = self._get_once(url, headers, deadline)
            if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
                target = urljoin(url, response.headers["location"])
                if urlsplit(target).netloc.lower() != urlsplit(url).netloc.lower():
                    # a credential is for the host it was given to: never carried to another one
                    headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
                url = target
                continue
            return response
        raise RedirectError(f"more than {self.settings.max_redirects} redirects", url=url)

    def _get_once(self, url: str, headers: dict[str, str], deadline: float) -> Response:
        cap = self.settings.max_body_bytes
        _request.deadline, _request.deadline_bound = deadline, False
        try:
            with self.client.stream("GET", url, headers=headers) as r:
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise TooLargeError(f"body of {declared} bytes is over the {cap}-byte cap", url=url)
                decoder = _Decoder(r.headers.get("content-encoding", ""), cap, url)
                chunks, raw_size = [], 0
                received: list[bytes] | None = [] if decoder.z is not None else None  # else the same as chunks
                for raw in r.iter_raw():
                    raw_size += len(raw)
                    if raw_size > cap:
                        raise TooLargeError(f"body is over the {cap}-byte cap", url=url)
                    if time.monotonic() > deadline:
                        raise DeadlineError(f"took longer than {self.settings.deadline_seconds:g} s", url=url)
                    if received is not None:
                        received.append(raw)
                    chunks.append(decoder.feed(raw))
                chunks.append(decoder.finish())
                resp_headers = {k.lower(): v for k, v in r.headers.items()}
                status = r.status_code
                # what was received, for the raw record: the header lines in order and as cased
                as_sent = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in r.headers.raw)
                version, reason = r.http_version, r.reason_phrase
        except BlockedURLError as exc:  # raised by the guard as the connection opened
            raise BlockedURLError(str(exc).split(": ", 1)[-1], url=url) from None
        except httpx.TimeoutException:
            if getattr(_request, "deadline_bound", False) or time.monotonic() >= deadline:
                raise DeadlineError(f"took longer than {self.settings.deadline_seconds:g} s", url=url) from None
            raise FetchTimeout("timed out", url=url) from None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise FetchError(f"request refused ({exc.__class__.__name__}: {exc})", url=url) from None
        except httpx.TransportError as exc:
            raise TransientFetchError(f"connection failed ({exc.__class__.__name__}: {exc})", url=url) from None
        except RuntimeError as exc:  # httpx: the client was closed under us, by a stop (SIGTERM)
            if "closed" not in str(exc):
                raise
            raise FetchError("not sent: the harvest is stopping", url=url) from None
        finally:
            _request.deadline = None
        if status in (429,) or status >= 500:
            raise HTTPStatusError(f"HTTP {status}", url=url, status=status,
                                  retry_after=_retry_after(resp_headers.get("retry-after")),
                                  body=b"".join(chunks), headers=resp_headers)
        if status >= 400 and status not in (404, 410):
            raise HTTPStatusError(f"HTTP {status}", url=url, status=status, body=b"".join(chunks),
                                  headers=resp_headers)
        body, fetched_at = b"".join(chunks), utcnow()
        # An identity body is what was received: one bytes object serves both (no copy held in flight).
        record = RawRecord(url=url, fetched_at=fetched_at, status=status, reason=reason, http_version=version,
                           headers=as_sent, payload=body if received is None else b"".join(received))
        return Response(url=url, status=status, headers=resp_headers, body=body, fetched_at=fetched_at, record=record)


class _Decoder:
    """Content-Encoding undone incrementally with a hard limit on what it may produce."""

    def __init__(self, encoding: str, cap: int, url: str):
        self.cap, self.url, self.produced = cap, url, 0
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
        if len(codings) > 1:
            raise FetchError(f"stacked Content-Encoding {encoding!r} refused", url=url)
        self.coding = codings[0] if codings else ""
        if self.coding in ("gzip", "x-gzip"):
            self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.coding == "deflate":
            self.z = zlib.decompressobj()
        elif self.coding == "":
            self.z = None
        else:
            raise FetchError(f"unsupported Content-Encoding {encoding!r}", url=url)
        self.started = False

    def _count(self, data: bytes) -> bytes:
        self.produced += len(data)
        if self.produced > self.cap:
            raise TooLargeError(f"body is over the {self.cap}-byte cap once decompressed", url=self.url)
        return data

    def feed(self, data: bytes) -> bytes:
        if self.z is None:
            return self._count(data)
        out = []
        try:
            while data:
                chunk = self.z.decompress(data, self.cap - self.produced + 1)
                out.append(self._count(chunk))
                data = self.z.unconsumed_tail
                self.started = True
        except zlib.error as exc:
            if self.coding == "deflate" and not self.started:  # raw deflate, as some servers send
                self.z, self.started = zlib.decompressobj(-zlib.MAX_WBITS), True
                return self.feed(data)
            raise FetchError(f"could not decode {self.coding} body ({exc})", url=self.url) from None
        return b"".join(out)

    def finish(self) -> bytes:
        return self._count(self.z.flush()) if self.z is not None else b""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())


_request = threading.local()  # the deadline of the request this thread is making, if any


def _bounded(timeout: float | None) -> float | None:
    """A socket timeout that never runs past the current request's deadline."""
    deadline = getattr(_request, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    _request.deadline_bound = timeout is None or left < timeout  # a timeout now is the deadline's
    if left <= 0:
        raise httpcore.ReadTimeout("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write is cut at the request's deadline, so a server
    trickling its headers or body a byte at a time cannot hold a harvest open."""

    def __init__(self, inner: httpcore.NetworkStream):
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> "_DeadlineStream":
        return _DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str):
        return self.inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to an address that has just passed the address policy, through
    any inner backend, and bounds every read and write by the request's deadline."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.NetworkBackend):
        self.policy, self.inner = policy, inner

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = self.policy.connect_address(host, f"{host}:{port}")
        stream = self.inner.connect_tcp(address, port, timeout=_bounded(timeout), local_address=local_address,
                                        socket_options=socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise BlockedURLError("unix sockets are not allowed", url=path)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, inner, closed: Callable[[], None]):
        self.inner, self.closed = inner, closed

    def __iter__(self):
        with _httpcore_errors():
            yield from self.inner

    def close(self) -> None:
        try:
            if hasattr(self.inner, "close"):
                self.inner.close()
        finally:
            closed, self.closed = self.closed, None
            if closed is not None:  # once, however often it is closed
                closed()


_ERRORS = ((httpcore.ConnectTimeout, httpx.ConnectTimeout), (httpcore.ReadTimeout, httpx.ReadTimeout),
           (httpcore.WriteTimeout, httpx.WriteTimeout), (httpcore.PoolTimeout, httpx.PoolTimeout),
           (httpcore.ConnectError, httpx.ConnectError), (httpcore.ReadError, httpx.ReadError),
           (httpcore.WriteError, httpx.WriteError), (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
           (httpcore.LocalProtocolError, httpx.LocalProtocolError),
           (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol), (httpcore.TimeoutException, httpx.TimeoutException),
           (httpcore.NetworkError, httpx.NetworkError), (httpcore.ProtocolError, httpx.ProtocolError))


class _httpcore_errors:
    """httpcore's exceptions as httpx's, so the client above handles one family."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        for low, high in _ERRORS if exc_type else ():
            if issubclass(exc_type, low):
                raise high(str(exc)) from exc
        return False


class PoolTransport(httpx.BaseTransport):
    """An httpx transport over httpcore connection pools, one per host, whose network backend is
    guarded. One pool per host, not one for all: httpcore looks through every connection of a pool,
    under its lock, for each request, and a crawl of hundreds of hosts at once spent more of its
    time there than on the pages. The pools of hosts not in use are closed beyond the most recent
    `hosts_at_once` + 8, so idle connections never pile up over a night of sites."""

    def __init__(self, settings: HttpSettings, policy: AddressPolicy, network_backend: httpcore.NetworkBackend | None,
                 hosts_at_once: int = 4):
        self._ssl = httpx.create_ssl_context()
        self._backend = _GuardedBackend(policy, network_backend or httpcore.SyncBackend())
        self._keep = hosts_at_once + 8
        self._pools: OrderedDict[tuple, list] = OrderedDict()  # (scheme, host, port) -> [pool, requests open]
        self._lock = threading.Lock()

    def _take(self, key: tuple) -> list:
        """The host's pool (made if need be), counted as in use until `_give_back`."""
        with self._lock:
            entry = self._pools.get(key)
            if entry is None:
                # a host gets one request at a time (Http's politeness); a few more connections at most
                entry = self._pools[key] = [httpcore.ConnectionPool(
                    ssl_context=self._ssl, max_connections=4, max_keepalive_connections=2, keepalive_expiry=5.0,
                    retries=0, network_backend=self._backend), 0]
            self._pools.move_to_end(key)
            entry[1] += 1
            spare = len(self._pools) - self._keep
            idle = [k for k, (_, open_) in self._pools.items() if open_ == 0][:max(0, spare)]
            closing = [self._pools.pop(k)[0] for k in idle]
        for pool in closing:
            pool.close()
        return entry

    def _give_back(self, entry: list) -> None:
        with self._lock:
            entry[1] -= 1

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                             target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        entry = self._take((request.url.raw_scheme, request.url.raw_host, request.url.port))
        try:
            with _httpcore_errors():
                response = entry[0].handle_request(core)
        except BaseException:
            self._give_back(entry)
            raise
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_ResponseStream(response.stream, lambda: self._give_back(entry)),
                              extensions=response.extensions)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = [pool for pool, _ in self._pools.values()], OrderedDict()
        for pool in pools:
            pool.close()


class GuardedTransport(httpx.BaseTransport):
    """Any transport, behind the address policy: nothing is sent to a refused URL."""

    def __init__(self, inner: httpx.BaseTransport, policy: AddressPolicy):
        self.inner, self.policy = inner, policy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_url(str(request.url))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def build_client(settings: HttpSettings, harvest: HarvestSettings | None = None, *,
                 transport: httpx.BaseTransport | None = None, network_backend: httpcore.NetworkBackend | None = None,
                 resolve: Resolver | None = None, sleep: Callable[[float], None] | None = None) -> Http:
    """The safe client every collector uses. Tests pass a transport (respx) or a network backend,
    and a resolver; the address policy stays in front of either."""
    harvest = harvest or HarvestSettings()
    policy = AddressPolicy(parse_networks(settings.allow_networks), resolve or system_resolver)
    # Our pool checks every connection as it opens; a transport passed in gets the check per request.
    guarded = (GuardedTransport(transport, policy) if transport
               else PoolTransport(settings, policy, network_backend, harvest.concurrency))
    client = httpx.Client(
        transport=guarded,
        timeout=httpx.Timeout(settings.read_timeout_seconds, connect=settings.connect_timeout_seconds),
        follow_redirects=False,
        # Only encodings _Decoder can undo with a limit.
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
        trust_env=False,  # proxies from the environment would bypass the address checks
    )
    return Http(settings=settings, harvest=harvest, client=client, policy=policy,
                sleep=sleep or time.sleep)

"""A real HTTP server on 127.0.0.1 for tests: a routing table (path -> (status, headers, body), or
a callable that answers the request itself), a record of what was received, and a context manager
that runs it. Shared by the client's and the crawler's tests."""

from __future__ import annotations

import http.server
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Received:
    path: str  # with its query
    headers: dict[str, str]  # names lower-cased
    at: float  # time.monotonic() on arrival


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        server: LoopbackServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                            time.monotonic()))
            route = server.routes.get(urlsplit(self.path).path, server.not_found)
        if callable(route):
            route(self)
        else:
            self.reply(*route)

    def reply(self, status: int, headers: dict | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        for name, value in headers.items():
            if value is not None:  # None leaves a header out
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    not_found: tuple = (404, {}, b"not found")

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.routes: dict = {}
        self.received: list[Received] = []
        self.stop = threading.Event()  # set to release handlers that hang or drip

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.received]

    def clear(self) -> None:
        with self.lock:
            self.received = []

    def reset(self) -> None:
        self.stop.set()
        self.stop = threading.Event()
        with self.lock:
            self.routes = {}
            self.received = []


@contextmanager
def serving(cls: type[LoopbackServer] = LoopbackServer):
    server = cls()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()


def sequence(*answers):
    """A route answering each request with the next of `answers` (the last one repeats)."""
    answers = list(answers)
    lock = threading.Lock()

    def route(handler: Handler) -> None:
        with lock:
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            answer(handler)
        else:
            handler.reply(*answer)
    return route


def drop_connection(handler: Handler) -> None:
    """Close the connection without answering."""
    handler.close_connection = True

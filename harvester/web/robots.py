"""robots.txt, fetched once per site through the safe client and parsed with protego.

A missing robots.txt (4xx) allows everything; one that fails (5xx, timeout) disallows the site
for this run, as RFC 9309 asks, and says so in the run's errors rather than crawling blind.
"""

from __future__ import annotations

import threading
from typing import Any, Callable
from urllib.parse import urlsplit

from protego import Protego

from harvester.errors import BlockedURLError, FetchError

ALLOW_ALL = Protego.parse("")
DISALLOW_ALL = Protego.parse("User-agent: *\nDisallow: /")


class RobotsCache:
    """One parsed robots.txt per origin. `fetch(url)` is the client's own GET (robots not asked),
    passed in so that this module needs nothing of the client's."""

    def __init__(self, fetch: Callable[[str], Any], user_agent: str):
        self.fetch, self.user_agent = fetch, user_agent
        self._parsers: dict[str, Protego] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def parser(self, url: str) -> Protego:
        origin = self._origin(url)
        with self._lock:
            if origin in self._parsers:
                return self._parsers[origin]
        robots_url = origin + "/robots.txt"
        try:
            response = self.fetch(robots_url)
            if response.status >= 400:
                parser = ALLOW_ALL
            else:
                parser = Protego.parse(response.body.decode(response.charset or "utf-8", errors="replace"))
        except BlockedURLError:
            raise  # a refused address is the policy's answer, not the site's
        except FetchError as exc:
            status = getattr(exc, "status", None)
            parser = ALLOW_ALL if status is not None and 400 <= status < 500 else DISALLOW_ALL
            if parser is DISALLOW_ALL:
                self._errors[origin] = str(exc)
        with self._lock:
            self._parsers.setdefault(origin, parser)
            return self._parsers[origin]

    def allowed(self, url: str) -> bool:
        return self.parser(url).can_fetch(url, self.user_agent)

    def crawl_delay(self, url: str) -> float | None:
        with self._lock:
            parser = self._parsers.get(self._origin(url))
        if parser is None:
            return None
        delay = parser.crawl_delay(self.user_agent)
        return float(delay) if delay is not None else None

    def sitemaps(self, url: str) -> list[str]:
        return list(self.parser(url).sitemaps)

    def error(self, url: str) -> str | None:
        """Why robots.txt could not be read for this site, if it could not."""
        return self._errors.get(self._origin(url))

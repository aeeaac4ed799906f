"""Every error ccqm raises on purpose, so callers catch ours and never a library's.

    CcqmError                     base; `str()` is one line naming what went wrong and where
     ├── ConfigError              a config file or setting is wrong (exit code 2): names file and field
     ├── FetchError               an HTTP fetch failed: names the URL
     │    ├── BlockedURLError     the URL's scheme or address is not allowed (SSRF guard); never retried
     │    ├── RobotsDeniedError   robots.txt forbids the URL
     │    ├── TooLargeError       the body passed the byte cap (raw or decompressed)
     │    ├── RedirectError       a redirect loop, or more redirects than allowed; never retried
     │    └── HTTPStatusError     the server answered with an error status
     ├── CollectorError           a collector could not make sense of a response: names source and URL
     └── StoreError               the database could not be opened or written: names the file

Per-item and per-source failures are recorded in `run_errors` and the run goes on; only
configuration errors stop a run.
"""

from __future__ import annotations


class CcqmError(Exception):
    """Base of all ccqm errors."""


class ConfigError(CcqmError):
    """A configuration file or setting is invalid."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file, self.field = file, field
        where = ": ".join(part for part in (file, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class FetchError(CcqmError):
    """Fetching a URL failed."""

    retryable = True

    def __init__(self, message: str, *, url: str):
        self.url = url
        super().__init__(f"{url}: {message}")


class BlockedURLError(FetchError):
    """The URL is not one we may fetch (scheme, or an address that is not public)."""

    retryable = False


class RobotsDeniedError(FetchError):
    """robots.txt disallows the URL for our User-Agent."""

    retryable = False


class TooLargeError(FetchError):
    """The response body is larger than the configured cap."""

    retryable = False


class RedirectError(FetchError):
    """The redirects loop or are too many."""

    retryable = False


class HTTPStatusError(FetchError):
    """The server answered with a status we treat as failure."""

    def __init__(self, message: str, *, url: str, status: int):
        self.status = status
        self.retryable = status >= 500 or status == 429
        super().__init__(message, url=url)


class CollectorError(CcqmError):
    """A response could not be understood (malformed body, unexpected shape)."""

    def __init__(self, message: str, *, source: str, url: str | None = None):
        self.source, self.url = source, url
        super().__init__(f"{source}: {url + ': ' if url else ''}{message}")


class StoreError(CcqmError):
    """The database could not be opened, migrated or written."""

    def __init__(self, message: str, *, path: str):
        self.path = path
        super().__init__(f"{path}: {message}")

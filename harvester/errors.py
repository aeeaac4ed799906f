"""Every error ccqm raises on purpose, so callers catch ours and never a library's.

    CcqmError                      base; `str()` is one line naming what went wrong and where   exit 1
     ├── UsageError                 the command was asked for something that cannot be done      exit 2
     │    └── ConfigError           a config file, setting or variable is wrong: names it        exit 2
     ├── InputError                 a line of input (classify's JSONL) is malformed: names line  exit 1
     ├── FetchError                 an HTTP fetch failed: names the URL; not retried             exit 1
     │    ├── TransientFetchError   a dropped connection: retried
     │    │    └── FetchTimeout     a timeout: retried once at most (a server that never answers
     │    │                         must not hold the run)
     │    ├── DeferredError         the server asked us to wait longer than the cap: next run
     │    ├── BlockedURLError       the URL's scheme or address is not allowed (SSRF guard)
     │    ├── RobotsDeniedError     robots.txt forbids the URL
     │    ├── TooLargeError         the body passed the byte cap (raw or decompressed)
     │    ├── RedirectError         a redirect loop, or more redirects than allowed
     │    └── HTTPStatusError       an error status; retried only for 5xx and 429
     ├── ContentError               a fetched body cannot be read (a broken PDF, say)
     ├── CollectorError             a collector could not make sense of a response: names the source
     └── StoreError                 the database cannot be opened or written: names the file     exit 1
          └── StoreUnusableError    the file is not a usable ccqm database (a directory, SQLite)  exit 2

Lower libraries' exceptions are translated where they are called (httpx in `web.client`, DuckDB in
`store.db`, the rubric's `scoring.RubricError` in `config.settings`), so nothing above those seams
sees them. Each class carries its own exit code; the CLI reads it and maps nothing itself.
Per-item and per-source failures are recorded in `run_errors` and the run goes on; only
configuration errors stop a run.
"""

from __future__ import annotations


class CcqmError(Exception):
    """Base of all ccqm errors."""

    exit_code = 1
    label = ""  # printed before the message: "ccqm: config error: ..."


class UsageError(CcqmError):
    """The command asked for something impossible (an unknown organisation, clashing options)."""

    exit_code = 2
    label = "usage error"


class ConfigError(UsageError):
    """A configuration file, setting or environment variable is invalid."""

    label = "config error"

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file, self.field = file, field
        where = ": ".join(part for part in (file, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class InputError(CcqmError):
    """One record of a command's input is malformed."""

    label = "input error"

    def __init__(self, message: str, *, source: str, line: int):
        self.source, self.line = source, line
        super().__init__(f"{source}: line {line}: {message}")


class FetchError(CcqmError):
    """Fetching a URL failed in a way that trying again would not change."""

    retryable = False

    def __init__(self, message: str, *, url: str):
        self.url = url
        super().__init__(f"{url}: {message}")


class TransientFetchError(FetchError):
    """A timeout or a connection that failed or dropped: worth one more try."""

    retryable = True


class FetchTimeout(TransientFetchError):
    """The server did not answer in time: worth one more try, not more."""

    max_retries = 1


class DeadlineError(FetchTimeout):
    """The whole request outlasted its deadline (a body dripping in): another try would cost as much."""

    max_retries = 0


class DeferredError(FetchError):
    """The server asked for a wait (Retry-After) longer than the cap: the URL waits for the next
    run instead of the run sleeping."""


class BlockedURLError(FetchError):
    """The URL is not one we may fetch (scheme, or an address that is not public)."""


class RobotsDeniedError(FetchError):
    """robots.txt disallows the URL for our User-Agent."""


class TooLargeError(FetchError):
    """The response body is larger than the configured cap."""


class RedirectError(FetchError):
    """The redirects loop or are too many."""


class HTTPStatusError(FetchError):
    """The server answered with a status we treat as failure; 5xx and 429 are retried."""

    def __init__(self, message: str, *, url: str, status: int, retry_after: float | None = None,
                 body: bytes = b"", headers: dict[str, str] | None = None):
        # The answer's body (first 64 kB) and headers: APIs explain their refusals there (Graph
        # error codes, X's credit and rate-limit headers). Never shown as is: parse, then print.
        self.status, self.retry_after, self.body, self.headers = status, retry_after, body[:65536], headers or {}
        self.retryable = status >= 500 or status == 429
        super().__init__(message, url=url)


class ContentError(CcqmError):
    """A fetched body could not be read (a broken PDF, an undecodable document)."""


class BusyError(CcqmError):
    """Another process is already doing what was asked (a harvest while a harvest runs)."""


class InterruptedRun(CcqmError):
    """SIGINT or SIGTERM stopped a harvest; it saved what it had and recorded itself interrupted."""

    exit_code = 130


class CollectorError(CcqmError):
    """A response could not be understood (malformed body, unexpected shape)."""

    def __init__(self, message: str, *, source: str, url: str | None = None):
        self.source, self.url = source, url
        super().__init__(f"{source}: {url + ': ' if url else ''}{message}")


class NotConnected(CcqmError):
    """A source needs a credential that is not set (a Page token, a bearer token): it is skipped,
    not failed, and the run says which environment variable would connect it."""


class StoreError(CcqmError):
    """The database could not be opened, migrated or written."""

    def __init__(self, message: str, *, path: str):
        self.path = path
        super().__init__(f"{path}: {message}")


class StoreUnusableError(StoreError):
    """The file given as the database is not one ccqm can use: a usage mistake, not a failure."""

    exit_code = 2

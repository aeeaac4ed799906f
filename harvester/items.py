"""What collectors yield: normalised items with their raw snapshot, and the events around them.

A collector yields, for one source, any number of:
  Item        a piece of evidence with the raw body it came from (a `Snapshot`)
  Seen        an item already stored that is still there, unchanged (a 304, a known post id)
  Gone        an item that now answers 404/410: kept as evidence, marked gone
  Problem     one URL failed; the source goes on
  Refused     one URL was not fetched on purpose (robots.txt, address policy, scope)
and last one `NextCursor`, saved only after everything before it is committed and the source
succeeded. A long source may also yield `Checkpoint`s: progress that is safe to keep even if the
run is cut off (a crawl's remembered links), saved with the batch they follow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable
from urllib.parse import urlsplit

SCHEME_TAG = re.compile(r"(?<![\w@#])[@#]iccqm\b", re.IGNORECASE)
# Control characters: C0 but tab and newline, DEL, C1. Harvested text keeps none of them (an ESC
# sequence in a feed title must not reach a terminal, a log or a dossier).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What a terminal or a log line must show rather than obey: every control character, and the
# Unicode marks that reorder or hide text.
_HIDDEN = "\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff"
UNSAFE_ON_SCREEN = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_HIDDEN}]")
UNSAFE_ON_ONE_LINE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_HIDDEN}]")


def strip_controls(text: str | None) -> str | None:
    """Harvested text without control characters (newlines and tabs kept)."""
    return CONTROL.sub("", text) if text else text


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) with a host (control characters removed), else None: the one check
    every collector's URLs pass, so no javascript: or data: URL is ever stored."""
    if not url:
        return None
    url = CONTROL.sub("", url).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """Text safe to print: control characters and hidden marks shown as escapes (`\\x1b`,
    `\\u202e`); newlines and tabs too, unless `keep_newlines` (a traceback in a debug log)."""
    pattern = UNSAFE_ON_SCREEN if keep_newlines else UNSAFE_ON_ONE_LINE
    return pattern.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def item_id(platform: str, native_id: str) -> str:
    """A stable id: the same post or page reached twice by one platform is one item.

    A feed entry and the web page it links to stay two items (their texts differ); the scorer
    counts them as one piece of evidence through their shared URL.
    """
    return sha256(f"{platform}:{native_id}")[:24]


def tags_scheme(*texts: str | None) -> bool:
    """Whether any text tags the scheme (@iCCQM or #iCCQM, any case)."""
    return any(t and "iccqm" in t.lower() and SCHEME_TAG.search(t) for t in texts)  # the cheap test first


def normalise_text(text: str) -> str:
    """Text with NULs removed and runs of blank space folded, lines kept."""
    text = text.replace("\x00", "")
    lines = (re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True, eq=False)
class RawRecord:
    """One HTTP response exactly as it was received: status line, every header (in order, in the
    server's case, repeats kept) and the body as it came off the wire, still content-encoded (only
    the transfer coding, chunked, is undone). Snapshots point at it; many snapshots may share one
    (an API page of 40 posts, a feed of 20 entries), and the store keeps it once. `ccqm export
    --warc` writes it back out as a WARC response record whose payload digest is `payload_sha256`.

    `redacted` says what was taken out before it was kept (a credential an API echoed into its
    answer): the payload is then the decoded body with the secret replaced."""

    url: str
    fetched_at: dt.datetime
    status: int
    reason: str
    http_version: str
    headers: tuple[tuple[str, str], ...]
    payload: bytes
    redacted: str | None = None

    @cached_property
    def payload_sha256(self) -> str:
        return sha256(self.payload)

    @cached_property
    def id(self) -> str:
        """A stable id made of everything the record holds (so saving it twice stores it once)."""
        when = self.fetched_at.astimezone(dt.timezone.utc) if self.fetched_at.tzinfo else self.fetched_at
        return sha256(json.dumps([self.url, when.replace(tzinfo=None).isoformat(), self.http_version, self.status,
                                  self.reason, self.headers, self.payload_sha256, self.redacted]))[:32]

    def header(self, name: str) -> str | None:
        """The first value of a header, by case-insensitive name."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def content_encoded(self) -> bool:
        """Whether the payload is still compressed by the server (gzip, deflate)."""
        return (self.header("content-encoding") or "identity").strip().lower() not in ("", "identity")

    def accounted(self) -> int:
        """The payload's size the first time it is asked, 0 after: a record shared by many items
        counts once towards the size of the harvest batch that holds them."""
        if self.__dict__.get("_accounted"):
            return 0
        self.__dict__["_accounted"] = True
        return len(self.payload)

    def redact(self, body: bytes, secrets: tuple[str, ...], pattern: re.Pattern[bytes] | None = None,
               what: str = "credentials") -> RawRecord:
        """This record with `secrets` (and whatever `pattern` matches) blanked out of `body`, its
        decoded payload; itself when none occurs there. A redacted payload is the decoded body, so
        Content-Encoding and Content-Length are kept renamed `X-Ccqm-Original-...`, and a true
        Content-Length follows."""
        cleaned = body
        for secret in (s for s in secrets if s):
            cleaned = cleaned.replace(secret.encode("utf-8"), b"[redacted]")
        if pattern is not None:
            cleaned = pattern.sub(b"[redacted]", cleaned)
        if cleaned == body:
            return self
        kept = tuple((f"X-Ccqm-Original-{k}" if k.lower() in ("content-encoding", "content-length") else k, v)
                     for k, v in self.headers) + (("Content-Length", str(len(cleaned))),)
        return replace(self, headers=kept, payload=cleaned, redacted=what)


@dataclass(frozen=True)
class Snapshot:
    """One fetched version of a body: what makes a citation provable after deletion. `record`: the
    raw response it came from (the page as served, the whole API page or feed a post or entry
    was read from), kept once however many snapshots share it."""

    url: str
    fetched_at: dt.datetime
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    record: RawRecord | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", CONTROL.sub("", self.url))
        object.__setattr__(self, "headers", {k: strip_controls(v) for k, v in self.headers.items()})

    @property
    def hash(self) -> str:
        if self.record is not None and self.record.payload is self.body:  # hashed once for both
            return self.record.payload_sha256
        return sha256(self.body)


@dataclass(frozen=True)
class Item:
    org_id: str
    source_id: str
    platform: str
    kind: str  # page, pdf, feed_entry, post
    native_id: str  # canonical URL for pages and entries, the platform's URI for posts
    url: str | None
    title: str
    text: str
    published: dt.datetime | None = None
    author: str | None = None  # the author's handle as the platform shows it
    tags_scheme: bool = False
    snapshot: Snapshot | None = None
    # Conditional-request validators kept with the page so the next run can ask "changed?".
    etag: str | None = None
    last_modified: str | None = None
    # The author's platform user id (Mastodon account id, Bluesky DID, Facebook/Instagram/X id): a
    # renamed handle keeps its attribution.
    author_id: str | None = None

    def __post_init__(self) -> None:
        """The one sanitising step at the edge: every collector's items pass through it."""
        for name in ("title", "text", "author", "etag", "last_modified", "author_id"):
            object.__setattr__(self, name, strip_controls(getattr(self, name)))
        object.__setattr__(self, "url", safe_url(self.url))

    @property
    def id(self) -> str:
        return item_id(self.platform, self.native_id)

    @property
    def content_hash(self) -> str:
        return sha256(f"{self.title}\n{self.text}")


@dataclass(frozen=True)
class Seen:
    platform: str
    native_id: str


@dataclass(frozen=True)
class Gone:
    platform: str
    native_id: str
    status: int


@dataclass(frozen=True)
class Problem:
    url: str
    error: Exception


@dataclass(frozen=True)
class Refused:
    """A URL not fetched on purpose (robots.txt, the address policy, off the site): logged as it
    happens and counted, so the dossier's coverage says what could not be collected."""

    url: str
    reason: str


@dataclass(frozen=True)
class ProfileLinks:
    """Social profiles the organisation's website links to: evidence that those accounts are its
    own (a mention by one of them is credited to it, and its posts are not marked unverified)."""

    urls: tuple[str, ...]


@dataclass(frozen=True)
class NextCursor:
    value: dict


@dataclass(frozen=True)
class Checkpoint:
    """Progress to keep even if the run stops before the source ends (it becomes the cursor then).

    `value` may be a function that builds it: the harvest calls it only when it saves a batch, so a
    large site's progress is not copied after every few pages."""

    value: dict | Callable[[], dict]

    def resolve(self) -> dict:
        return self.value() if callable(self.value) else self.value

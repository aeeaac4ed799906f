"""The registry of organisations (`config/organisations.toml`), parsed and checked.

Each `[[organisation]]` table becomes a frozen `Organisation`; each website, feed and social
account becomes a `SourceSpec` with a stable id (`org/platform/locator`) that the store keys
cursors and errors on. A mistake is a ConfigError naming the file, the organisation and the field.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harvester.errors import ConfigError

KINDS = ("school", "charity", "faith", "business", "public", "community", "other")
# Platforms a registry may name. Those without a collector yet are listed as "not collected".
SOCIAL_PLATFORMS = ("mastodon", "bluesky", "youtube", "facebook", "instagram", "x", "threads", "linkedin")
# The owner of the scheme's own sources (mentions and tags of @iCCQM): not an organisation, and not a
# valid organisation id, so no registry entry can take it.
SCHEME = "_scheme"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_FIELDS = {"id", "name", "kind", "registered", "step", "website", "feeds", "social", "notes"}


@dataclass(frozen=True)
class SourceSpec:
    """One place evidence is collected from: a website, a feed or a social account."""

    org_id: str
    platform: str  # "website", "feed" or one of SOCIAL_PLATFORMS
    locator: str  # a URL, a handle or a channel id, as the registry gives it

    @property
    def id(self) -> str:
        return f"{self.org_id}/{self.platform}/{self.locator}"


@dataclass(frozen=True)
class Organisation:
    """A registered organisation as the registry describes it."""

    id: str
    name: str
    kind: str
    registered: dt.date
    step: int  # the CCQM step (1-7) the organisation says it has reached
    website: str | None = None
    feeds: tuple[str, ...] = ()
    social: tuple[tuple[str, str], ...] = ()  # (platform, locator) pairs
    notes: str = ""

    @property
    def sources(self) -> tuple[SourceSpec, ...]:
        specs = [SourceSpec(self.id, "website", self.website)] if self.website else []
        specs += [SourceSpec(self.id, "feed", url) for url in self.feeds]
        specs += [SourceSpec(self.id, platform, loc) for platform, loc in self.social]
        return tuple(specs)

    def handles(self, platform: str) -> tuple[str, ...]:
        return tuple(loc for p, loc in self.social if p == platform)


def load_registry(path: Path) -> tuple[Organisation, ...]:
    """Read and validate the registry file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None
    return parse_registry(data, file=str(path))


def parse_registry(data: dict[str, Any], *, file: str) -> tuple[Organisation, ...]:
    extra = set(data) - {"organisation"}
    if extra:
        raise ConfigError("unknown top-level key (only [[organisation]] tables belong here)",
                          file=file, field=sorted(extra)[0])
    tables = data.get("organisation", [])
    if not isinstance(tables, list):
        raise ConfigError("expected [[organisation]] tables", file=file, field="organisation")
    orgs: list[Organisation] = []
    seen: set[str] = set()
    for n, table in enumerate(tables, start=1):
        org = _parse_org(table, file=file, n=n)
        if org.id in seen:
            raise ConfigError("duplicate organisation id", file=file, field=f"organisation {org.id!r}: id")
        seen.add(org.id)
        orgs.append(org)
    return tuple(orgs)


def _parse_org(t: dict[str, Any], *, file: str, n: int) -> Organisation:
    label = f"organisation #{n}"

    def fail(field: str, message: str) -> ConfigError:
        return ConfigError(message, file=file, field=f"{label}: {field}")

    org_id = t.get("id")
    if not isinstance(org_id, str) or not _ID.match(org_id):
        raise fail("id", f"must be a lower-case slug like 'greenfield-primary', got {org_id!r}")
    label = f"organisation {org_id!r}"
    extra = set(t) - _FIELDS
    if extra:
        raise fail(sorted(extra)[0], f"unknown field (known: {', '.join(sorted(_FIELDS))})")
    name = t.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "a name is required")
    kind = t.get("kind", "other")
    if kind not in KINDS:
        raise fail("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    registered = t.get("registered")
    if isinstance(registered, dt.datetime):
        registered = registered.date()
    if not isinstance(registered, dt.date):
        raise fail("registered", f"must be a date like 2026-02-09, got {registered!r}")
    step = t.get("step", 1)
    if not isinstance(step, int) or isinstance(step, bool) or not 1 <= step <= 7:
        raise fail("step", f"must be a whole number from 1 to 7, got {step!r}")
    website = t.get("website")
    if website is not None:
        website = _check_url(website, fail, "website")
    feeds = t.get("feeds", [])
    if not isinstance(feeds, list):
        raise fail("feeds", "must be a list of URLs")
    feeds = tuple(_check_url(u, fail, "feeds") for u in feeds)
    social = t.get("social", {})
    if not isinstance(social, dict):
        raise fail("social", "must be a table of platform = [handles]")
    pairs: list[tuple[str, str]] = []
    for platform, handles in social.items():
        if platform not in SOCIAL_PLATFORMS:
            raise fail(f"social.{platform}", f"unknown platform (known: {', '.join(SOCIAL_PLATFORMS)})")
        if isinstance(handles, str):
            handles = [handles]
        if not isinstance(handles, list) or not all(isinstance(h, str) and h.strip() for h in handles):
            raise fail(f"social.{platform}", "must be a list of handles or profile URLs")
        pairs += [(platform, h.strip()) for h in handles]
    return Organisation(id=org_id, name=name.strip(), kind=kind, registered=registered, step=step,
                        website=website, feeds=feeds, social=tuple(pairs), notes=str(t.get("notes", "")))


def _check_url(value: Any, fail, field: str) -> str:
    if not isinstance(value, str):
        raise fail(field, f"must be a URL, got {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(field, f"must be an http(s) URL with a host, got {value!r}")
    return value.strip()

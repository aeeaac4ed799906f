"""`ccqm orgs unattributed` and `ccqm orgs link`: the scheme's posts no organisation owns yet, and
a validator tying an author's handle to an organisation (its stored posts become that
organisation's evidence at the next score)."""

from __future__ import annotations

from harvester.config.registry import SOCIAL_PLATFORMS
from harvester.config.scheme import social_platform
from harvester.config.settings import Settings
from harvester.errors import UsageError
from harvester.items import utcnow
from harvester.store.db import open_store

def platform_of(handle: str, platform: str | None = None) -> str:
    """The platform a handle belongs to: given, or read from a profile URL or the handle's form
    (`@user@server` is Mastodon, `name.bsky.social` Bluesky)."""
    if platform:
        if platform not in SOCIAL_PLATFORMS:
            raise UsageError(f"unknown platform {platform!r} (known: {', '.join(SOCIAL_PLATFORMS)})")
        return platform
    if handle.startswith(("http://", "https://")):
        return social_platform(handle) or "mastodon"  # any other server with /@user profiles is Mastodon
    if handle.lstrip("@").count("@") == 1:
        return "mastodon"
    if "." in handle:
        return "bluesky"
    raise UsageError(f"cannot tell which platform {handle!r} is on; add --platform")


def unattributed(settings: Settings) -> list[dict]:
    if not settings.db_path.exists():
        return []
    with open_store(settings.db_path, read_only=True) as store:
        return store.unattributed()


def link(settings: Settings, handle: str, org_id: str, *, platform: str | None, by: str) -> tuple[str, int]:
    """Attach `handle` to an organisation; returns (platform, posts attributed now)."""
    settings.organisation(org_id)  # an unknown organisation is a usage error naming the registry
    platform = platform_of(handle, platform)
    with open_store(settings.db_path) as store:
        return platform, store.link_handle(platform, handle, org_id, by, utcnow())

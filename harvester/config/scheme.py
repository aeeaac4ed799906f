"""The scheme's own sources, and the handles that tie a post's author to an organisation.

Posts that mention or tag @iCCQM are collected for the whole scheme (owner `SCHEME`), then
attributed to an organisation when their author's handle (or platform user id) is one the registry
lists, a validator linked, or the organisation's website links to. Handles are compared in one
normal form per platform, so `@Greenfield@Mastodon.Social`, `https://mastodon.social/@greenfield`
and a status's `acct` of `greenfield` on mastodon.social are the same account.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from harvester.config.registry import SCHEME, SourceSpec


def scheme_sources(scheme) -> tuple[SourceSpec, ...]:
    """The sources that collect mentions and tags of the scheme, from the `[scheme]` settings."""
    specs = [SourceSpec(SCHEME, "mastodon-tag", f"{server.rstrip('/')}/tags/{tag.lstrip('#')}")
             for server in scheme.mastodon_servers for tag in scheme.tags]
    if scheme.mastodon_account:
        specs.append(SourceSpec(SCHEME, "mastodon-mentions", scheme.mastodon_account))
    if scheme.bluesky_handle:
        specs.append(SourceSpec(SCHEME, "bluesky-search", scheme.bluesky_handle))
    if scheme.facebook_page_id:
        specs.append(SourceSpec(SCHEME, "facebook-tagged", scheme.facebook_page_id))
    if scheme.instagram_user_id:
        specs.append(SourceSpec(SCHEME, "instagram-tags", scheme.instagram_user_id))
    if scheme.x_user_id:
        specs.append(SourceSpec(SCHEME, "x-mentions", scheme.x_user_id))
        specs.append(SourceSpec(SCHEME, "x-search", "scheme"))
    return tuple(specs)


def normal_handle(platform: str, handle: str | None, url: str | None = None) -> str | None:
    """One spelling per account: lower case, no leading @, no profile-URL wrapping; a Mastodon
    handle is `user@server` (a status's bare `acct` takes the server from the status URL)."""
    if not handle:
        return None
    handle = handle.strip()
    if handle.startswith(("http://", "https://")):
        parts = urlsplit(handle)
        page_id = parse_qs(parts.query).get("id", [""])[0]
        if platform == "facebook" and parts.path.rstrip("/").endswith("profile.php") and page_id.isdigit():
            return page_id  # facebook.com/profile.php?id=N: the Page's numeric id
        first = parts.path.strip("/").split("/")[0] if parts.path.strip("/") else ""
        if platform == "mastodon":
            return f"{first.lstrip('@')}@{parts.hostname}".lower() if first else None
        if platform == "bluesky" and first == "profile":
            first = parts.path.strip("/").split("/")[1] if len(parts.path.strip("/").split("/")) > 1 else ""
        handle = first
    handle = handle.lstrip("@").lower()
    if platform == "mastodon" and "@" not in handle:
        host = urlsplit(url).hostname if url else None
        return f"{handle}@{host}" if host else handle
    return handle or None


_PROFILE_HOSTS = {"facebook.com": "facebook", "instagram.com": "instagram", "x.com": "x", "twitter.com": "x",
                  "bsky.app": "bluesky"}
_NOT_PROFILES = {"sharer", "sharer.php", "share", "intent", "hashtag", "explore", "p", "reel", "watch", "search",
                 "home", "login", "tags", "groups", "events", "policies", "privacy", "help"}


def social_platform(url: str) -> str | None:
    """The platform whose site `url` is on (facebook.com, m.facebook.com, twitter.com, ...), if any."""
    host = (urlsplit(url).hostname or "").removeprefix("www.").removeprefix("m.")
    return _PROFILE_HOSTS.get(host)


def profile_of(url: str) -> tuple[str, str] | None:
    """(platform, handle) when `url` is a social profile (facebook.com/name, x.com/name,
    bsky.app/profile/name, instagram.com/name, https://server/@user on Mastodon); None for a
    share button, a post, a hashtag or any other page."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    platform = social_platform(url)
    if platform:
        if platform == "bluesky":
            return ("bluesky", segments[1].lower()) if len(segments) == 2 and segments[0] == "profile" else None
        if len(segments) != 1 or segments[0].lower() in _NOT_PROFILES or segments[0].endswith(".php"):
            return None
        return platform, segments[0].lstrip("@").lower()
    if len(segments) == 1 and segments[0].startswith("@") and len(segments[0]) > 1 and parts.hostname:
        return "mastodon", f"{segments[0][1:]}@{parts.hostname}".lower()
    return None

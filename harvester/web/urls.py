"""URL canonicalisation and site scope, so one page is one item however it is linked."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "_ga", "ref_src",
                   "phpsessid", "jsessionid", "sid", "sessionid"}
SKIP_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".ico", ".css", ".js", ".zip", ".mp4",
                   ".mp3", ".mov", ".avi", ".woff", ".woff2", ".ttf", ".exe", ".dmg", ".doc", ".docx", ".xls",
                   ".xlsx", ".ppt", ".pptx")


def canonical(url: str, base: str | None = None) -> str | None:
    """An absolute, normalised http(s) URL, or None for anything else (mailto:, javascript:, ...)."""
    url = url.strip()
    if base and not url.startswith(("http://", "https://")):
        if url.startswith(("#", "mailto:", "tel:", "javascript:", "data:")):
            return None  # the page itself, or not a web page
        if url.startswith("/") and not url.startswith("//") and "/." not in url:
            url = _origin(base) + url  # the common case, without urljoin's cost
        else:
            try:
                url = urljoin(base, url)
            except ValueError:
                return None
    return _canonical_absolute(url)


@lru_cache(maxsize=1024)
def _origin(base: str) -> str:
    """scheme://host[:port] of an absolute URL."""
    scheme_end = base.find("//")
    path_start = base.find("/", scheme_end + 2) if scheme_end >= 0 else -1
    return base if path_start < 0 else base[:path_start]


@lru_cache(maxsize=20_000)
def _canonical_absolute(url: str) -> str | None:
    """Cached: a site's pages link to the same few hundred URLs, each page over again."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1].lower()  # credentials in a link are dropped
    default = {"http": ":80", "https": ":443"}[scheme]
    if netloc.endswith(default):
        netloc = netloc[: -len(default)]
    query = parts.query and urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                                       if k.lower() not in TRACKING_PARAMS and not k.lower().startswith("utm_")])
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def site_key(url: str) -> str:
    """The part of a URL that decides whether two URLs are the same site (host:port, minus www.)."""
    netloc = urlsplit(url).netloc.lower()
    return netloc[4:] if netloc.startswith("www.") else netloc


def in_scope(url: str, start: str) -> bool:
    return site_key(url) == site_key(start)


def worth_fetching(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return not path.endswith(SKIP_EXTENSIONS)

"""Collectors: one module per kind of source, all behind one small interface.

A collector is a function `collect(request) -> Iterator[Event]`: given a source, its saved cursor
and the safe HTTP client, it yields `Item`, `Seen`, `Gone` and `Problem` events and, last, one
`NextCursor` (see harvester.items). It never touches the database: the pipeline saves what it
yields and stores the cursor only once the items are committed. Parsing is done by pure
`parse_*` functions that tests feed recorded bodies with no HTTP at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Protocol

from harvester.web.client import Http
from harvester.web.extract import Page, parse_html
from harvester.items import Checkpoint, Gone, Item, NextCursor, Problem, ProfileLinks, Refused, Seen
from harvester.config.registry import SourceSpec
from harvester.config.settings import Settings

Event = Item | Seen | Gone | Problem | Refused | NextCursor | Checkpoint | ProfileLinks


@dataclass(frozen=True)
class CollectRequest:
    source: SourceSpec
    cursor: dict
    http: Http
    settings: Settings
    # ETag / Last-Modified of pages already stored, by URL (website collector); a harvest passes a
    # mapping that reads them from the store on first use.
    validators: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    # How a web page is read: in this thread, or by the harvest's worker processes (web.pool).
    parse_html: Callable[[bytes, str, str | None], Page] = parse_html


class Collector(Protocol):
    def __call__(self, request: CollectRequest) -> Iterator[Event]: ...


def collector_for(platform: str) -> Collector | None:
    """The collector of a platform, or None when ccqm cannot collect it yet."""
    from harvester.collectors import bluesky, facebook, feed, instagram, mastodon, website, x

    collectors: dict[str, Callable[[CollectRequest], Iterator[Event]]] = {
        "website": website.collect,
        "feed": feed.collect,
        "youtube": feed.collect_youtube,
        "mastodon": mastodon.collect,
        "bluesky": bluesky.collect,
        # the scheme's own sources: mentions and tags of @iCCQM (harvester.config.scheme)
        "mastodon-tag": mastodon.collect_tag,
        "mastodon-mentions": mastodon.collect_mentions,
        "bluesky-search": bluesky.collect_search,
        "facebook": facebook.collect,  # an organisation's Page, when it has connected a token
        "facebook-tagged": facebook.collect_tagged,
        "instagram": instagram.collect,
        "instagram-tags": instagram.collect_tags,
        "x": x.collect,  # X is paid per post read: every X source is off unless X_BEARER_TOKEN is set
        "x-mentions": x.collect_mentions,
        "x-search": x.collect_search,
    }
    return collectors.get(platform)

"""The X collector: mentions of @iCCQM, a recent search, and an organisation's own posts.

X is paid per post read (PLATFORMS.md), so this collector is off unless X_BEARER_TOKEN is set, asks
only for what is newer than the last run (`since_id`), and reads at most
`scheme.x_max_posts_per_run` posts in a run, shared by every X source of that run. Running out (that
budget, the account's credit, the rate limit) stops a source cleanly: what was read is kept, a
Problem says why, and the cursor lets the next run carry on without paying twice for a post.

The cursor: `newest_id`, everything up to which was read (the next `since_id`); after a stop part
way down a timeline, `until_id` (the oldest post read) and `top_id` (the newest): the gap between
`newest_id` and `until_id` is read first next time. `user_id` keeps an account's looked-up id.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import weakref
from typing import Iterator
from urllib.parse import urlsplit

from harvester.collectors import CollectRequest, Event
from harvester.errors import CollectorError, ConfigError, DeferredError, FetchError, HTTPStatusError, NotConnected
from harvester.web.extract import parse_date
from harvester.items import CONTROL, Item, NextCursor, Problem, RawRecord, Snapshot, tags_scheme

TOKEN_ENV = "X_BEARER_TOKEN"
SCHEME_HANDLE = "iCCQM"
PAGE_SIZE = 100
MIN_PAGE = 5  # mentions and timelines; recent search will not take fewer than 10
MIN_SEARCH_PAGE = 10
# Defaults return only id and text: PLATFORMS.md's "always request".
FIELDS = {
    "tweet.fields": "created_at,author_id,public_metrics,entities,attachments,note_tweet,referenced_tweets",
    "expansions": "author_id,attachments.media_keys",
    "user.fields": "username,name",
    "media.fields": "type,url,preview_image_url",
}
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")
NUMERIC_ID = re.compile(r"^[0-9]{1,20}$")
STALE_ID = re.compile(rb"'(?:since|until)_id' must be a tweet id created after .{0,80}larger than ([0-9]{1,20})")
BEARER = re.compile(r"^[A-Za-z0-9\-._~+/%]+=*$")  # RFC 6750's b64token, and X's %-escapes


class Budget:
    """Posts a run may still read. Pages reserve before they ask (sources run in threads) and give
    back what X did not return, so the run never reads more than it was allowed."""

    def __init__(self, total: int):
        self.total, self.left, self.closed = total, total, None
        self._lock = threading.Lock()

    def reserve(self, wanted: int, minimum: int) -> int:
        """Up to `wanted` posts, or 0 when fewer than the API's smallest page are left."""
        with self._lock:
            n = min(wanted, self.left)
            if self.closed or n < minimum:
                return 0
            self.left -= n
            return n

    def can_read(self, minimum: int) -> bool:
        with self._lock:
            return not self.closed and self.left >= minimum

    def refund(self, n: int) -> None:
        """Give back what was reserved and not served (negative if X served more: that is read too)."""
        with self._lock:
            self.left += n

    def close(self, reason: str) -> None:
        """The account's credit ran out: no X source of this run asks again."""
        self.closed = reason

    def spent(self, url: str) -> DeferredError:
        return DeferredError(self.closed or f"X budget of {self.total} posts for this run is spent; the rest "
                             "waits for the next run", url=url)


# One budget per run, keyed by the run's HTTP client: `ccqm schedule` harvests night after night in
# one process, and a budget for the whole process would be spent after the first night.
_budgets: dict[int, tuple[weakref.ref, Budget]] = {}
_budgets_lock = threading.Lock()


def run_budget(http, total: int) -> Budget:
    with _budgets_lock:
        for key in [k for k, (ref, _) in _budgets.items() if ref() is None]:
            del _budgets[key]
        ref, budget = _budgets.get(id(http), (None, None))
        if ref is None or ref() is not http:
            budget = Budget(total)
            _budgets[id(http)] = (weakref.ref(http), budget)
        return budget


def reset_budget() -> None:
    """Forget every run's budget (tests; a long-lived process that reuses one client)."""
    with _budgets_lock:
        _budgets.clear()


def parse_tweet(tweet: dict, users_by_id: dict[str, dict], *, org_id: str, source_id: str, fetched_at,
                record: RawRecord | None = None) -> Item:
    """An item from one post of `data`, its author's username taken from `includes.users`. Long posts
    carry their whole text in `note_tweet`; `text` is then cut at 280 characters."""
    note = tweet.get("note_tweet") or {}
    text = note.get("text") or tweet.get("text") or ""
    username = (users_by_id.get(tweet.get("author_id") or "") or {}).get("username")
    if not (username and USERNAME.match(username)):
        username = None
    url = f"https://x.com/{username}/status/{tweet['id']}" if username else f"https://x.com/i/web/status/{tweet['id']}"
    tags = [f"@{m.get('username', '')}" for e in (tweet.get("entities"), note.get("entities"))
            for m in (e or {}).get("mentions") or []]
    tags += [f"#{h.get('tag', '')}" for e in (tweet.get("entities"), note.get("entities"))
             for h in (e or {}).get("hashtags") or []]
    return Item(
        org_id=org_id, source_id=source_id, platform="x", kind="post", native_id=str(tweet["id"]), url=url,
        title="", text=text, published=parse_date(tweet.get("created_at")), author=username,
        author_id=tweet.get("author_id"), tags_scheme=tags_scheme(text, " ".join(tags)),
        snapshot=Snapshot(url=url, fetched_at=fetched_at, status=200, content_type="application/json",
                          body=json.dumps(tweet, ensure_ascii=False, sort_keys=True).encode("utf-8"), record=record))


def parse_username(locator: str) -> str | None:
    """The username from `name`, `@name` or an x.com / twitter.com profile URL; None otherwise."""
    if locator.startswith(("http://", "https://")):
        parts = urlsplit(locator)
        host = (parts.hostname or "").removeprefix("www.").removeprefix("mobile.")
        if host not in ("x.com", "twitter.com"):
            return None
        locator = parts.path.strip("/").split("/")[0]
    name = locator.strip().lstrip("@")
    return name if USERNAME.match(name) else None


def scheme_query(tags: tuple[str, ...]) -> str:
    terms = [f"@{SCHEME_HANDLE}"] + [f"#{t.lstrip('#')}" for t in tags]
    return f"({' OR '.join(dict.fromkeys(terms))}) -is:retweet"


def _bearer() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise NotConnected(f"X is paid per post read: set {TOKEN_ENV} to collect it")
    if not BEARER.match(token):  # a stray newline or space: the HTTP layer would quote it in its error
        raise ConfigError("is not a bearer token (letters, digits and -._~+/%= only)", file=f"environment {TOKEN_ENV}")
    return {"Authorization": f"Bearer {token}"}


def _said(value) -> str:
    """X's own words, fit for a one-line message."""
    return CONTROL.sub("", " ".join(str(value or "").split()))[:200]


def _stopped(exc: FetchError, spec, budget: Budget) -> FetchError:
    """The Problem that ends a source early but cleanly (credit, rate limit, X down), keeping what
    was read; raises CollectorError for a refusal (a bad token, no access), which no wait fixes."""
    if isinstance(exc, DeferredError) or (exc.retryable and not isinstance(exc, HTTPStatusError)):
        return exc
    if not isinstance(exc, HTTPStatusError):
        raise exc
    try:
        problem = json.loads(exc.body)
    except ValueError:
        problem = None
    problem = problem if isinstance(problem, dict) else {}
    title, detail = _said(problem.get("title")), _said(problem.get("detail"))
    kind = f"{problem.get('type', '')} {title}".lower()
    if exc.status == 402 or "usage-capped" in kind or "usagecap" in kind or "credits" in kind:
        reason = (f"the X account's credit ran out (HTTP {exc.status} {title or 'Payment Required'}): nothing more "
                  "is read until it is topped up or its cap resets; the rest waits for the next run")
        budget.close(reason)
        return DeferredError(reason, url=exc.url)
    if exc.status == 429:
        reset = exc.headers.get("x-rate-limit-reset", "")
        when = (dt.datetime.fromtimestamp(int(reset), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                if reset.isdigit() else "a time X did not say")
        return DeferredError(f"X rate limit reached; it resets at {when}; the rest waits for the next run", url=exc.url)
    if exc.status >= 500:
        return exc
    what = {401: f"X refused the bearer token: check {TOKEN_ENV}",
            403: "X refused access: the app's project or plan does not allow this endpoint"}.get(exc.status, "X refused the request")
    said = ": ".join(p for p in (title, detail if detail != title else "") if p)
    raise CollectorError(f"{what} (HTTP {exc.status}{' ' + said if said else ''})", source=spec.id, url=exc.url) from None


def _window_floor(exc: FetchError) -> str | None:
    """Recent search keeps 7 days: it refuses an older `since_id`/`until_id` with a 400 that names the
    oldest id it still takes."""
    if isinstance(exc, HTTPStatusError) and exc.status == 400:
        found = STALE_ID.search(exc.body)
        return found.group(1).decode() if found else None
    return None


def _errors_only(answer: dict, what: str, spec, url: str) -> CollectorError:
    first = (answer.get("errors") or [{}])[0]
    first = first if isinstance(first, dict) else {}
    said = _said(first.get("detail") or first.get("title") or "no detail")
    return CollectorError(f"X could not read {what}: {said}", source=spec.id, url=url)


def _read(req: CollectRequest, url: str, params: dict, *, page_param: str, minimum: int, what: str,
          headers: dict[str, str], budget: Budget, cursor: dict) -> Iterator[Event]:
    """Page newest first from the cursor, within the run's budget; yields items, any Problem, and
    last the NextCursor."""
    spec, http = req.source, req.http
    since, until, top = cursor.get("newest_id"), cursor.get("until_id"), cursor.get("top_id")
    newest = oldest = None
    page_token, seen_tokens, stop, moved = None, set(), None, False
    while True:
        n = budget.reserve(PAGE_SIZE, minimum)
        if not n:
            stop = budget.spent(url)
            break
        query = {**FIELDS, **params, "max_results": n, **({"since_id": since} if since else {}),
                 **({"until_id": until} if until else {}), **({page_param: page_token} if page_token else {})}
        try:
            answer, response = http.get_json(url, params=query, headers=headers)
        except FetchError as exc:
            budget.refund(n)
            floor = _window_floor(exc)
            if floor and not moved and not page_token:  # read what the window still holds, once
                moved = True
                if until and int(until) <= int(floor):  # the gap has left the window: unreadable now
                    since, until, top = max((i for i in (floor, top) if i), key=int), None, None
                else:
                    since = floor
                continue
            stop = _stopped(exc, spec, budget)
            break
        if not isinstance(answer, dict):
            budget.refund(n)
            raise CollectorError(f"X answered {what} with something other than an object", source=spec.id, url=url)
        data = answer.get("data") or []
        if "data" not in answer and answer.get("errors"):
            budget.refund(n)
            raise _errors_only(answer, what, spec, url)
        budget.refund(n - len(data))
        users = {u.get("id"): u for u in (answer.get("includes") or {}).get("users") or [] if isinstance(u, dict)}
        for tweet in data:
            if not isinstance(tweet, dict) or not NUMERIC_ID.match(str(tweet.get("id", ""))):
                raise CollectorError("X post without a numeric id", source=spec.id, url=url)
            newest = tweet["id"] if newest is None or int(tweet["id"]) > int(newest) else newest
            oldest = tweet["id"] if oldest is None or int(tweet["id"]) < int(oldest) else oldest
            if any(r.get("type") == "retweeted" for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)):
                continue  # a retweet is someone else's words (the mentions endpoint cannot filter them)
            yield parse_tweet(tweet, users, org_id=spec.org_id, source_id=spec.id, fetched_at=response.fetched_at,
                              record=response.record)
        page_token = (answer.get("meta") or {}).get("next_token")
        if not page_token or page_token in seen_tokens:
            break
        seen_tokens.add(page_token)
    cursor = dict(cursor)
    if stop is None:  # read to the end: the gap, if there was one, is closed
        best = max((i for i in (since, top, newest) if i), key=int, default=None)
        cursor.pop("until_id", None)
        cursor.pop("top_id", None)
        if best:
            cursor["newest_id"] = best
    else:
        if newest is not None:  # what lies below the oldest post read waits for the next run
            cursor.update(until_id=oldest, top_id=top or newest)
        yield Problem(url, stop)
    yield NextCursor(cursor)


def _api(req: CollectRequest) -> str:
    return req.settings.platforms.x_api_url.rstrip("/")


def collect_mentions(req: CollectRequest) -> Iterator[Event]:
    """Posts mentioning the scheme's account (`/2/users/{id}/mentions`); the locator is its user id."""
    headers = _bearer()
    user_id = (req.source.locator or req.settings.scheme.x_user_id).strip()
    if not NUMERIC_ID.match(user_id):
        raise CollectorError("the scheme's X user id (scheme.x_user_id) must be numeric", source=req.source.id)
    budget = run_budget(req.http, req.settings.scheme.x_max_posts_per_run)
    yield from _read(req, f"{_api(req)}/2/users/{user_id}/mentions", {}, page_param="pagination_token",
                     minimum=MIN_PAGE, what=f"the mentions of user {user_id}", headers=headers, budget=budget,
                     cursor=req.cursor)


def collect_search(req: CollectRequest) -> Iterator[Event]:
    """Recent search (last 7 days); the locator is a query such as `#iCCQM`, or `scheme` for the
    scheme's handle and tags. Retweets are excluded: someone else's words, and paid for."""
    headers = _bearer()
    query = req.source.locator.strip()
    query = scheme_query(req.settings.scheme.tags) if query == "scheme" else query
    if "is:retweet" not in query:
        query = f"{query} -is:retweet"
    budget = run_budget(req.http, req.settings.scheme.x_max_posts_per_run)
    yield from _read(req, f"{_api(req)}/2/tweets/search/recent", {"query": query}, page_param="next_token",
                     minimum=MIN_SEARCH_PAGE, what=f"the search {query!r}", headers=headers, budget=budget,
                     cursor=req.cursor)


def collect(req: CollectRequest) -> Iterator[Event]:
    """An organisation's own posts (`/2/users/{id}/tweets`, retweets excluded); the id is looked up
    once by username (a paid user read) and kept in the cursor."""
    spec, http = req.source, req.http
    headers = _bearer()
    username = parse_username(spec.locator)
    if username is None:
        raise CollectorError("not an X username or an x.com / twitter.com profile URL", source=spec.id)
    budget = run_budget(http, req.settings.scheme.x_max_posts_per_run)
    cursor = dict(req.cursor)
    if not cursor.get("user_id"):
        lookup = f"{_api(req)}/2/users/by/username/{username}"
        if not budget.can_read(MIN_PAGE):  # no paid user read when no post could follow it
            yield Problem(lookup, budget.spent(lookup))
            yield NextCursor(cursor)
            return
        try:
            answer, _ = http.get_json(lookup, headers=headers)
        except FetchError as exc:
            yield Problem(lookup, _stopped(exc, spec, budget))
            yield NextCursor(cursor)
            return
        user = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(user, dict) or not NUMERIC_ID.match(str(user.get("id", ""))):
            if isinstance(answer, dict) and answer.get("errors"):
                raise _errors_only(answer, f"user {username!r}", spec, lookup)
            raise CollectorError(f"X user lookup for {username!r} answered without an id", source=spec.id, url=lookup)
        cursor.update(user_id=str(user["id"]), username=user.get("username") or username)
    yield from _read(req, f"{_api(req)}/2/users/{cursor['user_id']}/tweets", {"exclude": "retweets"},
                     page_param="pagination_token", minimum=MIN_PAGE, what=f"the posts of user {username!r}",
                     headers=headers, budget=budget, cursor=cursor)

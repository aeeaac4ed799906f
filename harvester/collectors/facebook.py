"""The Facebook collector: posts that tag the scheme's Page, and an organisation's own Page.

Meta offers no anonymous read of Pages, so every call carries a Page token from the environment
(`META_PAGE_TOKEN` for the scheme's Page, `META_PAGE_TOKEN_<ORG>` for an organisation that connected
its own). It goes in the Authorization header only, never in a URL, an error or a log: the
`access_token` Graph writes into its paging links is dropped before they are followed, and Graph's
error messages are scrubbed of it. Paging follows `paging.next` on the Graph host only; `since`
(unix seconds of the newest post read) makes a nightly run ask only for what is new. Throttling
stops the source cleanly and keeps where it stopped; a missing permission is one line naming it.
The Graph helpers here (`Graph`, `Walk`) serve the Instagram collector too: same API, same errors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Iterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

from harvester.collectors import CollectRequest, Event
from harvester.errors import CollectorError, DeferredError, HTTPStatusError, NotConnected
from harvester.web.client import Response
from harvester.web.extract import parse_date
from harvester.items import Item, NextCursor, Problem, RawRecord, Refused, Snapshot, tags_scheme

PAGE_SIZE = 100  # Graph's largest page
POST_FIELDS = ("id,message,message_tags,created_time,updated_time,permalink_url,from,"
               "attachments{media_type,media,url,description},full_picture,shares,"
               "reactions.summary(total_count).limit(0),comments.summary(true).limit(0)")
SCHEME_TOKEN = "META_PAGE_TOKEN"
THROTTLE_CODES = frozenset({4, 17, 32, 613})  # app, user, Page and per-call limits; 8000x: business use case
SECRET_PARAMS = ("access_token", "appsecret_proof")
_TOKENISH = re.compile(r"(access_token=)[^&\s\"']+|\b(?:EAA|IGQ)[A-Za-z0-9_-]{16,}")
_TOKENISH_BYTES = re.compile(rb"(?<=access_token=)[^&\s\"'\\]+|\b(?:EAA|IGQ)[A-Za-z0-9_-]{16,}")
_QUOTED = re.compile(r"(?<![A-Za-z])'([^']{2,80})'(?![A-Za-z])")
_BARE_PERMISSION = re.compile(r"\b([a-z]+(?:_[a-z]+)+) permission")
_NOT_PAGES = {"groups", "events", "watch", "share", "sharer", "sharer.php", "story.php", "permalink.php",
              "photo.php", "photo", "login", "home.php", "hashtag", "search", "marketplace", "gaming"}


def org_token_variable(org_id: str) -> str:
    """The variable holding an organisation's own Page token: META_PAGE_TOKEN_GREENFIELD_PRIMARY."""
    return f"{SCHEME_TOKEN}_{org_id.upper().replace('-', '_')}"


def token_from(variable: str, why: str) -> str:
    token = os.environ.get(variable, "").strip()
    if not token:
        raise NotConnected(why)
    return token


# -- Graph errors, tokens and paging links ---------------------------------------------------------

def is_throttle(code: int) -> bool:
    return code in THROTTLE_CODES or 80000 <= code <= 80099


def is_permission(code: int) -> bool:
    return code in (10, 190) or 200 <= code <= 299


def scrub(text: str, token: str | None = None) -> str:
    """`text` without the token, nor anything shaped like one (Graph can echo a malformed token)."""
    if token:
        text = text.replace(token, "[token]")
    return _TOKENISH.sub(lambda m: (m[1] or "") + "[token]", text)


def without_token(url: str) -> str:
    """A paging link as Graph gave it, minus the credentials Graph copies into it."""
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in SECRET_PARAMS]
    return urlunsplit(parts._replace(query="&".join(kept)))


def same_host(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return a.scheme.lower() == b.scheme.lower() and a.netloc.lower() == b.netloc.lower()


def graph_error(body: bytes | dict | None) -> dict | None:
    """The `error` object of a Graph answer, or None when the body is not one."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) and isinstance(error.get("code"), int) else None


def explain(error: dict, *, token: str, variable: str, label: str) -> str:
    """One line saying what Graph refused and what would fix it, with no token in it."""
    code, sub = error["code"], error.get("error_subcode")
    what = f"Graph error {code}" + (f"/{sub}" if isinstance(sub, int) else "")
    message = scrub(str(error.get("message") or ""), token)
    message = re.sub(r"^\(#\d+\)\s*", "", message)
    message = re.sub(r"\s*(Refer to|For more info|Please (read|refer)|To submit)\b.*$", "", message, flags=re.S)
    message = " ".join(message.split()) or "no message"
    if code == 190:
        return (f"{label} refused the token in {variable} ({what}): it is invalid or has expired; "
                f"set a new one ({message})")
    needs = list(dict.fromkeys(_QUOTED.findall(message) + _BARE_PERMISSION.findall(message)))
    if needs and (is_permission(code) or re.search(r"permission|feature", message, re.I)):
        return (f"{label} refused access ({what}): the token in {variable} needs "
                + " or ".join(repr(n) for n in needs) + f" ({message})")
    kind = "a permission or feature is missing" if is_permission(code) else "the request failed"
    return f"{label} refused access ({what}): {kind}: {message}"


class Throttled(Exception):
    """Graph asked this app to slow down: the source stops, what it read so far is kept."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem.error))
        self.problem = problem


class Graph:
    """One source's Graph session: the token in a header, Graph's errors turned into ours."""

    def __init__(self, req: CollectRequest, token: str, variable: str, label: str):
        self.req, self.token, self.variable, self.label = req, token, variable, label
        self.base = req.settings.platforms.graph_api_url.rstrip("/")

    def get(self, url: str, params: dict | None = None) -> tuple[dict, Response]:
        try:
            data, response = self.req.http.get_json(url, params=params,
                                                    headers={"Authorization": f"Bearer {self.token}"})
        except DeferredError as exc:  # a 429 whose Retry-After is past the cap
            raise Throttled(Problem(exc.url, exc)) from None
        except HTTPStatusError as exc:
            error = graph_error(exc.body)
            if error is None and exc.status == 429:  # throttled, though not in Graph's words
                raise Throttled(self._throttled("HTTP 429", exc.url)) from None
            if exc.status >= 500 and (error is None or error.get("is_transient") or error.get("code") in (1, 2)):
                # an outage (Graph says so: code 1/2, is_transient): the server's fault, not the token's
                said = f"HTTP {exc.status}" + (f", Graph error {error['code']}" if error else "")
                raise CollectorError(f"{self.label} is unavailable ({said}); the next run tries again",
                                     source=self.req.source.id, url=scrub(exc.url, self.token)) from None
            self._fail(error, exc.url, f"HTTP {exc.status} without a Graph error body")
        error = graph_error(data)
        if error is not None or not isinstance(data, dict):
            self._fail(error, response.url, "the answer is not a JSON object")
        return data, self._kept(response)

    def _kept(self, response: Response) -> Response:
        """The answer with its raw record fit to keep: Graph writes the token into its paging links,
        and no credential is ever stored or exported, so the record is redacted where it holds one."""
        if response.record is None:
            return response
        record = response.record.redact(response.body, (self.token,), _TOKENISH_BYTES, "access tokens")
        return response if record is response.record else dataclasses.replace(response, record=record)

    def _throttled(self, why: str, url: str) -> Problem:
        url = scrub(url, self.token)
        return Problem(url, DeferredError(f"{self.label} throttled this app ({why}); the rest waits for the next run",
                                          url=url))

    def _fail(self, error: dict | None, url: str, otherwise: str):
        url = scrub(url, self.token)
        if error is None:
            raise CollectorError(otherwise, source=self.req.source.id, url=url)
        if is_throttle(error["code"]):
            raise Throttled(self._throttled(f"code {error['code']}", url))
        raise CollectorError(explain(error, token=self.token, variable=self.variable, label=self.label),
                             source=self.req.source.id, url=url)


def unix(value: str | None) -> int | None:
    when = parse_date(value)
    return int(when.timestamp()) if when else None


class Walk:
    """One Graph edge read page by page until the saved `since`, `limit` objects,
    the last page, a link off the Graph host or a throttle. Iterating yields `(object, response)`
    pairs and the Problem or Refused that ended the walk; then `state` is the edge's next cursor:
    `{"since": newest seen}`, or after a throttle mid-walk the old `since` and a `resume` link, so
    older posts not yet read are not skipped for ever.

    `ordered` edges (a Page's posts, an account's media) are newest first: the walk stops at the
    first object older than `since`. Others (photo tags, hashtag media) are not: every object of a
    page read is given (the store knows what it has), and the walk stops after a page with nothing
    new."""

    def __init__(self, graph: Graph, url: str, params: dict, state: dict, *, stamp: str, ordered: bool, limit: int):
        self.graph, self.url, self.params = graph, url, params
        self.stamp, self.ordered, self.limit = stamp, ordered, limit
        self.state, self.throttled = dict(state), False

    def __iter__(self) -> Iterator[tuple[dict, Response] | Problem | Refused]:
        since = self.state.get("since")
        resume = self.state.get("resume") or {}
        url, params = (resume["next"], None) if resume.get("next") else (self.url, self.params)
        newest = max((t for t in (since, resume.get("newest")) if t is not None), default=None)
        read, fetched = 0, set()
        while url and url not in fetched and read < self.limit:
            fetched.add(url)
            try:
                page, response = self.graph.get(url, params)
            except Throttled as exc:
                yield exc.problem
                self.throttled = True
                if params is None:  # mid-walk: carry on from this page next time
                    self.state = {**({"since": since} if since is not None else {}),
                                  "resume": {"next": url, "newest": newest}}
                return
            data = page.get("data")
            if not isinstance(data, list):
                raise CollectorError("Graph answer has no data list", source=self.graph.req.source.id,
                                     url=response.url)
            fresh = reached = False
            for obj in data:
                if not isinstance(obj, dict) or not obj.get("id"):
                    raise CollectorError("Graph object without an id", source=self.graph.req.source.id,
                                         url=response.url)
                stamp = unix(obj.get(self.stamp))
                older = since is not None and stamp is not None and stamp < since
                reached, fresh = reached or older, fresh or not older
                if older and self.ordered:
                    break
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
                yield obj, response
                read += 1
                if read >= self.limit:
                    break
            link = (page.get("paging") or {}).get("next") if isinstance(page.get("paging"), dict) else None
            if (not data or read >= self.limit or (reached if self.ordered else not fresh)
                    or not isinstance(link, str)):
                break
            url, params = without_token(link), None
            if not same_host(url, self.graph.base):
                yield Refused(url, f"paging.next leaves {urlsplit(self.graph.base).netloc}: not followed")
                break
        self.state = {"since": newest} if newest is not None else {}


# -- Posts -----------------------------------------------------------------------------------------

def _tag_names(tags) -> list[dict]:
    if isinstance(tags, dict):  # older API versions keyed the tags by offset
        tags = [t for group in tags.values() if isinstance(group, list) for t in group]
    return [t for t in tags or [] if isinstance(t, dict)]


def post_url(post_id: str) -> str:
    page, _, post = post_id.partition("_")
    return f"https://www.facebook.com/{page}/posts/{post}" if post else f"https://www.facebook.com/{post_id}"


def parse_post(obj: dict, *, org_id: str, source_id: str, fetched_at, response_status: int = 200,
               scheme_page_id: str | None = None, tagged: bool = False, record: RawRecord | None = None) -> Item | None:
    """An item from one Graph Post; None without an id. `tagged`: it came from the scheme Page's
    /tagged edge, so it tags the scheme whatever its text says."""
    if not isinstance(obj, dict) or not obj.get("id"):
        return None
    text = obj.get("message") or ""
    for attachment in (obj.get("attachments") or {}).get("data") or []:
        description = attachment.get("description") if isinstance(attachment, dict) else None
        if description and description not in text:
            text = f"{text}\n{description}" if text else description
    tags = _tag_names(obj.get("message_tags"))
    names = " ".join(t["name"] if str(t.get("name", "")).startswith("#") else "@" + str(t.get("name", ""))
                     for t in tags)
    by_id = bool(scheme_page_id) and any(str(t.get("id")) == scheme_page_id for t in tags)
    author = obj.get("from") if isinstance(obj.get("from"), dict) else {}
    url = obj.get("permalink_url") or post_url(str(obj["id"]))
    return Item(
        org_id=org_id, source_id=source_id, platform="facebook", kind="post", native_id=str(obj["id"]),
        url=url, title="", text=text, published=parse_date(obj.get("created_time")),
        author=author.get("name"), author_id=str(author["id"]) if author.get("id") else None,
        tags_scheme=tagged or by_id or tags_scheme(text, names),
        snapshot=Snapshot(url=url, fetched_at=fetched_at, status=response_status, content_type="application/json",
                          body=json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8"), record=record))


def page_ref(locator: str) -> str | None:
    """The Page id or username in a registry locator (a numeric id, a name or a Page URL), or None."""
    loc = locator.strip()
    if not loc.startswith(("http://", "https://")):
        loc = loc.lstrip("@")
        return loc if re.fullmatch(r"[A-Za-z0-9.\-]{1,100}", loc) else None
    parts = urlsplit(loc)
    host = (parts.hostname or "").lower()
    if host not in ("facebook.com", "fb.com") and not host.endswith(".facebook.com"):
        return None
    segments = [s for s in parts.path.split("/") if s]
    if segments[:1] == ["profile.php"]:
        ids = parse_qs(parts.query).get("id") or [""]
        return ids[0] if ids[0].isdigit() else None
    if segments[:1] in (["pages"], ["people"], ["p"]) and len(segments) > 1:
        tail = segments[-1].rsplit("-", 1)[-1]
        return tail if tail.isdigit() else None
    if not segments or segments[0].lower() in _NOT_PAGES:
        return None
    return segments[0] if re.fullmatch(r"[A-Za-z0-9.\-]{1,100}", segments[0]) else None


def _collect_posts(req: CollectRequest, graph: Graph, edge: str, *, tagged: bool) -> Iterator[Event]:
    spec = req.source
    params = {"fields": POST_FIELDS, "limit": min(PAGE_SIZE, req.settings.harvest.max_posts_per_source)}
    if req.cursor.get("since"):
        params["since"] = req.cursor["since"]
    walk = Walk(graph, f"{graph.base}/{edge}", params, req.cursor, stamp="created_time", ordered=True,
                limit=req.settings.harvest.max_posts_per_source)
    for got in walk:
        if isinstance(got, (Problem, Refused)):
            yield got
            continue
        obj, response = got
        item = parse_post(obj, org_id=spec.org_id, source_id=spec.id, fetched_at=response.fetched_at,
                          response_status=response.status, tagged=tagged, record=response.record,
                          scheme_page_id=req.settings.scheme.facebook_page_id or None)
        if item is not None:
            yield item
    yield NextCursor(walk.state)


def collect_tagged(req: CollectRequest) -> Iterator[Event]:
    """Public posts that tag the scheme's Page (`/{page-id}/tagged`), read with its own Page token."""
    page_id = req.source.locator.strip()
    if not page_id.isdigit():
        raise CollectorError("the scheme's Facebook Page must be given by its numeric id", source=req.source.id)
    token = token_from(SCHEME_TOKEN, f"set {SCHEME_TOKEN} to collect posts that tag the scheme's Facebook Page")
    graph = Graph(req, token, SCHEME_TOKEN, "Facebook")
    yield from _collect_posts(req, graph, f"{page_id}/tagged", tagged=True)


def collect(req: CollectRequest) -> Iterator[Event]:
    """An organisation's own Page (`/{page}/posts`), read with the Page token it gave us."""
    ref = page_ref(req.source.locator)
    if ref is None:
        raise CollectorError("not a Facebook Page URL, name or id", source=req.source.id)
    variable = org_token_variable(req.source.org_id)
    token = token_from(variable, f"set {variable} to a Page token of {req.source.org_id}'s Facebook Page "
                                 "to collect its posts")
    graph = Graph(req, token, variable, "Facebook")
    yield from _collect_posts(req, graph, f"{ref}/posts", tagged=False)

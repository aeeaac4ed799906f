"""A small world of websites and social APIs served on 127.0.0.1, for the demo and the tests.

Each folder under `sites/` becomes its own origin (its own port, its own robots.txt), served as
static files with ETag / Last-Modified and 304 answers, like a real web server. `mastodon/` and
`bluesky/` hold real-shaped API bodies; their servers answer the same endpoints the collectors
call in production (account lookup, account statuses with min_id / max_id and Link headers,
getAuthorFeed with cursors). `{{origin}}` in any text body becomes the serving origin.

`graph/` is Facebook's and Instagram's Graph API: `pages.json` and `posts.json` (Pages and their
posts, as Graph gives them), `ig_users.json` and `ig_media.json` (professional accounts and their
media). The server answers `/{page-id-or-username}/posts`, `/{page-id}/tagged` (posts whose
`message_tags` name the Page), `/{ig-user-id}/media` and `/{ig-user-id}/tags` (media whose caption
names the account's @username; `owner` is left out there, as Instagram gives it only to the media's
own account), with an optional `/vNN.N` prefix, `fields`, `limit`, `since` / `until` and `after`
cursors, and `paging.next` links on its own origin. `x/` is X's API v2: `users.json`,
`tweets.json` and `media.json`, served as `/2/users/{id}/mentions`, `/2/users/{id}/tweets`,
`/2/tweets/search/recent` and `/2/users/by/username/{name}`, with `since_id` / `until_id`, page
tokens in `meta.next_token`, the requested fields and expansions, and `x-rate-limit-*` headers.
Both want a bearer token (any token: the world is a demo) and answer 401 in the platform's own
error shape without one. Pages hold at most GRAPH_PAGE / X_PAGE objects whatever the client asks,
so the demo's handful of posts still goes through the collectors' paging.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import json
import mimetypes
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, urlencode, urlsplit

TEXT_TYPES = (".html", ".xml", ".txt", ".json", ".rss", ".atom")
LAST_MODIFIED = email.utils.formatdate(1_760_000_000, usegmt=True)
GRAPH_PAGE = 2  # objects per Graph page at most, whatever `limit` asks
X_PAGE = 3  # posts per X page at most, whatever `max_results` asks
X_WINDOW = 15 * 60  # X counts requests per endpoint in 15-minute windows
X_LIMITS = {"mentions": 450, "tweets": 1500, "search": 450, "user": 300}  # requests per window (app)
_GRAPH_VERSION = re.compile(r"^/v\d+\.\d+(?=/)")
_X_INVALID = "https://api.twitter.com/2/problems/invalid-request"
_X_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"


class _Handler(BaseHTTPRequestHandler):
    server_version = "ccqm-world/1"
    root: Path
    kind: str  # site, mastodon, bluesky, graph, x
    state: dict  # per server: X's request counts
    lock: threading.Lock

    def log_message(self, *args) -> None:  # keep test and demo output quiet
        pass

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _send(self, status: int, body: bytes = b"", content_type: str = "text/plain", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _load(self, path: Path) -> bytes | None:
        try:
            resolved = path.resolve()
            resolved.relative_to(self.root.resolve())
        except (OSError, ValueError):
            return None
        if not resolved.is_file():
            return None
        body = resolved.read_bytes()
        if resolved.suffix in TEXT_TYPES:
            body = body.replace(b"{{origin}}", self.origin.encode())
        return body

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if self.kind == "mastodon":
            return self._mastodon(url.path, query)
        if self.kind == "bluesky":
            return self._bluesky(url.path, query)
        if self.kind == "graph":
            return self._graph(url.path, query)
        if self.kind == "x":
            return self._x(url.path, query)
        return self._site(url.path)

    def _site(self, path: str) -> None:
        rel = path.lstrip("/")
        target = self.root / rel
        if path.endswith("/") or (target.is_dir()):
            target = target / "index.html"
        body = self._load(target)
        if body is None:
            return self._send(404, b"<h1>Not found</h1>", "text/html; charset=utf-8")
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if self.headers.get("If-None-Match") == etag:
            return self._send(304, headers={"ETag": etag, "Last-Modified": LAST_MODIFIED})
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix in (".html", ".txt"):
            ctype += "; charset=utf-8"
        if target.name == "feed.xml":
            ctype = "application/rss+xml; charset=utf-8"
        self._send(200, body, ctype, {"ETag": etag, "Last-Modified": LAST_MODIFIED})

    def _json(self, data, headers: dict | None = None, status: int = 200) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _mastodon(self, path: str, query: dict) -> None:
        parts = path.strip("/").split("/")
        if parts[:4] == ["api", "v1", "accounts", "lookup"]:
            body = self._load(self.root / "accounts" / "lookup" / f"{query.get('acct', '').lstrip('@')}.json")
            if body is None:
                return self._json({"error": "Record not found"}, status=404)
            return self._send(200, body, "application/json; charset=utf-8")
        if len(parts) == 5 and parts[:3] == ["api", "v1", "accounts"] and parts[4] == "statuses":
            return self._statuses(self.root / "accounts" / parts[3] / "statuses.json", query,
                                  f"{self.origin}/api/v1/accounts/{parts[3]}/statuses")
        if len(parts) == 5 and parts[:4] == ["api", "v1", "timelines", "tag"]:  # the scheme's tag
            return self._statuses(self.root / "tags" / f"{parts[4].lower()}.json", query,
                                  f"{self.origin}/api/v1/timelines/tag/{parts[4]}")
        return self._json({"error": "Not found"}, status=404)

    def _statuses(self, path: Path, query: dict, base: str) -> None:
        """A timeline page, newest first, with Mastodon's Link paging (max_id back, min_id forward)."""
        body = self._load(path)
        if body is None:
            return self._json({"error": "Record not found"}, status=404)
        statuses = json.loads(body)  # newest first
        limit = min(int(query.get("limit", 20)), 40)
        if "min_id" in query:  # the page just after min_id, still newest first
            newer = [s for s in statuses if int(s["id"]) > int(query["min_id"])]
            page = newer[-limit:]
        else:
            older = [s for s in statuses if "max_id" not in query or int(s["id"]) < int(query["max_id"])]
            page = older[:limit]
        headers = {}
        if page:
            headers["Link"] = (f'<{base}?{urlencode({"limit": limit, "max_id": page[-1]["id"]})}>; rel="next", '
                               f'<{base}?{urlencode({"limit": limit, "min_id": page[0]["id"]})}>; rel="prev"')
        return self._json(page, headers)

    def _bluesky(self, path: str, query: dict) -> None:
        if path != "/xrpc/app.bsky.feed.getAuthorFeed":
            return self._json({"error": "MethodNotImplemented"}, status=501)
        actor = query.get("actor", "")
        body = self._load(self.root / "getAuthorFeed" / f"{actor}.json")
        if body is None:
            return self._json({"error": "InvalidRequest", "message": "Profile not found"}, status=400)
        feed = json.loads(body)["feed"]
        start = int(query.get("cursor") or 0)
        limit = min(int(query.get("limit", 50)), 100)
        page = feed[start:start + limit]
        data = {"feed": page}
        if start + limit < len(feed):
            data["cursor"] = str(start + limit)
        return self._json(data)

    # -- Facebook and Instagram: the Graph API ----------------------------------------------------

    def _bearer(self) -> str:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else ""

    def _graph_error(self, status: int, code: int, message: str, kind: str = "OAuthException",
                     subcode: int | None = None) -> None:
        error = {"message": message, "type": kind, "code": code,
                 **({"error_subcode": subcode} if subcode is not None else {}),
                 "fbtrace_id": "A" + hashlib.sha256(f"{self.path}{time.time_ns()}".encode()).hexdigest()[:22]}
        return self._json({"error": error}, {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_request"'}
                          if status == 401 else None, status=status)

    def _world_json(self, name: str) -> list:
        body = self._load(self.root / name)
        return json.loads(body) if body is not None else []

    def _graph(self, path: str, query: dict) -> None:
        version = _GRAPH_VERSION.match(path)
        prefix = version.group(0) if version else ""
        if not self._bearer() and not query.get("access_token"):
            return self._graph_error(401, 104, "An access token is required to request this resource.")
        parts = path[len(prefix):].strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            return self._graph_error(400, 100, "Unsupported get request. Please read the Graph API documentation "
                                     "at https://developers.facebook.com/docs/graph-api", "GraphMethodException")
        node, edge = parts
        pages = self._world_json("pages.json")
        page = next((p for p in pages if node == p["id"] or node.lower() == p.get("username", "").lower()), None)
        ig_user = next((u for u in self._world_json("ig_users.json") if node == u["id"]), None)
        if page is not None:
            kind, objects = "Page", self._page_edge(page, edge, query)
        elif ig_user is not None:
            kind, objects = "IGUser", self._ig_edge(ig_user, edge)
        elif node.isdigit():
            return self._graph_error(400, 100, f"Unsupported get request. Object with ID '{node}' does not exist, "
                                     "cannot be loaded due to missing permissions, or does not support this "
                                     "operation. Please read the Graph API documentation at "
                                     "https://developers.facebook.com/docs/graph-api", "GraphMethodException", 33)
        else:
            return self._graph_error(404, 803, f"(#803) Some of the aliases you requested do not exist: {node}")
        if objects is None:
            return self._graph_error(400, 100, f"(#100) Tried accessing nonexisting field ({edge}) on node type ({kind})")
        try:
            start = _graph_offset(query["after"]) if query.get("after") else 0
            limit = min(int(query.get("limit", 25)), 100)
        except ValueError:
            return self._graph_error(400, 100, "(#100) Invalid parameter")
        chosen = objects[start:start + max(1, min(limit, GRAPH_PAGE))]
        wanted = _graph_fields(query.get("fields"), "media" if kind == "IGUser" else "post")
        data = {"data": [{k: v for k, v in o.items() if k in wanted} for o in chosen]}
        if chosen:
            end = start + len(chosen)
            data["paging"] = {"cursors": {"before": _graph_cursor(start), "after": _graph_cursor(end)}}
            if end < len(objects):  # Graph copies the access token into its links; this world does not
                params = {k: v for k, v in query.items() if k not in ("access_token", "after")}
                data["paging"]["next"] = (f"{self.origin}{prefix}/{node}/{edge}?"
                                          f"{urlencode({**params, 'after': _graph_cursor(end)})}")
        return self._json(data)

    def _page_edge(self, page: dict, edge: str, query: dict) -> list[dict] | None:
        """A Page's own posts, or the posts of others that tag it, newest first within since / until."""
        posts = self._world_json("posts.json")
        if edge == "posts":
            chosen = [p for p in posts if (p.get("from") or {}).get("id") == page["id"]]
        elif edge == "tagged":
            chosen = [p for p in posts if (p.get("from") or {}).get("id") != page["id"]
                      and any(t.get("id") == page["id"] for t in p.get("message_tags") or [])]
        else:
            return None
        since, until = (int(query[k]) if str(query.get(k, "")).isdigit() else None for k in ("since", "until"))
        chosen = [p for p in chosen if (since is None or _unix(p["created_time"]) >= since)
                  and (until is None or _unix(p["created_time"]) <= until)]
        return sorted(chosen, key=lambda p: _unix(p["created_time"]), reverse=True)

    def _ig_edge(self, user: dict, edge: str) -> list[dict] | None:
        """An account's own media, or the media of others whose caption names its @username."""
        media = self._world_json("ig_media.json")
        if edge == "media":
            chosen = [m for m in media if (m.get("owner") or {}).get("id") == user["id"]]
        elif edge == "tags":
            named = re.compile(rf"(?<![\w.])@{re.escape(user['username'])}(?![\w])", re.I)
            chosen = [{k: v for k, v in m.items() if k != "owner"} for m in media  # owner: for its own account only
                      if (m.get("owner") or {}).get("id") != user["id"] and named.search(m.get("caption") or "")]
        else:
            return None
        return sorted(chosen, key=lambda m: _unix(m["timestamp"]), reverse=True)

    # -- X: API v2 ---------------------------------------------------------------------------------

    def _x_problem(self, status: int, title: str, detail: str, kind: str = "about:blank", **extra) -> None:
        body = json.dumps({"title": title, "detail": detail, "type": kind, "status": status, **extra}).encode()
        return self._send(status, body, "application/problem+json", self._x_rate_headers())

    def _x_invalid(self, name: str, value: str, message: str) -> None:
        body = json.dumps({"errors": [{"parameters": {name: [value]}, "message": message}],
                           "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                           "type": _X_INVALID}).encode()
        return self._send(400, body, "application/json; charset=utf-8", self._x_rate_headers())

    def _x_rate_headers(self) -> dict:
        return dict(getattr(self, "_rate", {}))

    def _x_count(self, endpoint: str) -> bool:
        """Count a request against the endpoint's window; False once the window is spent."""
        now = int(time.time())
        with self.lock:
            start, used = self.state.get(endpoint, (now, 0))
            if now >= start + X_WINDOW:
                start, used = now, 0
            used += 1
            self.state[endpoint] = (start, used)
        limit = X_LIMITS[endpoint]
        self._rate = {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(max(0, limit - used)),
                      "x-rate-limit-reset": str(start + X_WINDOW)}
        return used <= limit

    def _x(self, path: str, query: dict) -> None:
        self._rate = {}
        if not self._bearer():
            return self._x_problem(401, "Unauthorized", "Unauthorized")
        parts = path.strip("/").split("/")
        users = self._world_json("users.json")
        if parts[:4] == ["2", "users", "by", "username"] and len(parts) == 5:
            if not self._x_count("user"):
                return self._x_problem(429, "Too Many Requests", "Too Many Requests")
            user = next((u for u in users if u["username"].lower() == parts[4].lower()), None)
            if user is None:
                return self._json({"errors": [_x_not_found("username", parts[4])]}, self._x_rate_headers())
            return self._json({"data": _x_user(user, query)}, self._x_rate_headers())
        if parts[:2] == ["2", "users"] and len(parts) == 4 and parts[3] in ("mentions", "tweets"):
            endpoint, lowest = parts[3], 5
        elif parts == ["2", "tweets", "search", "recent"]:
            endpoint, lowest = "search", 10
        else:
            return self._x_problem(404, "Not Found Error", "The requested resource does not exist",
                                   _X_NOT_FOUND)
        if not self._x_count(endpoint):
            return self._x_problem(429, "Too Many Requests", "Too Many Requests")
        raw = query.get("max_results", "10")
        if not raw.isdigit() or not lowest <= int(raw) <= 100:
            return self._x_invalid("max_results", raw, f"The `max_results` query parameter value [{raw}] is not "
                                   f"between {lowest} and 100")
        for name in ("since_id", "until_id"):
            if name in query and not query[name].isdigit():
                return self._x_invalid(name, query[name], f"The `{name}` query parameter value [{query[name]}] "
                                       "is not valid")
        token_name = "next_token" if endpoint == "search" else "pagination_token"
        token = query.get(token_name)
        if token is not None and not re.fullmatch(r"[0-9a-z]{1,32}", token):
            return self._x_invalid(token_name, token, f"The `{token_name}` query parameter value [{token}] is not valid")
        tweets = self._world_json("tweets.json")
        by_id = {u["id"]: u for u in users}
        if endpoint == "search":
            if not query.get("query"):
                return self._x_invalid("query", "", "The `query` query parameter can not be empty")
            chosen = [t for t in tweets if _x_matches(t, by_id, query["query"])]
        else:
            user = by_id.get(parts[2])
            if user is None:
                return self._json({"errors": [_x_not_found("id", parts[2])]}, self._x_rate_headers())
            if endpoint == "mentions":
                chosen = [t for t in tweets if t["author_id"] != user["id"]
                          and user["username"].lower() in _x_entities(t, "mentions", "username")]
            else:
                exclude = set(query.get("exclude", "").split(","))
                chosen = [t for t in tweets if t["author_id"] == user["id"]
                          and not ("retweets" in exclude and _x_kind(t, "retweeted"))
                          and not ("replies" in exclude and _x_kind(t, "replied_to"))]
        floor, ceiling = int(query.get("since_id", 0)), int(query.get("until_id", 10 ** 20))
        if token is not None:
            ceiling = min(ceiling, int(token, 36))
        chosen = sorted((t for t in chosen if floor < int(t["id"]) < ceiling), key=lambda t: int(t["id"]), reverse=True)
        page = chosen[:min(int(raw), X_PAGE)]
        if not page:
            return self._json({"meta": {"result_count": 0}}, self._x_rate_headers())
        answer = {"data": [_x_tweet(t, query) for t in page]}
        expansions = set(query.get("expansions", "").split(","))
        includes = {}
        if "author_id" in expansions:
            authors = dict.fromkeys(t["author_id"] for t in page)
            includes["users"] = [_x_user(by_id[a], query) for a in authors if a in by_id]
        if "attachments.media_keys" in expansions:
            keys = {k for t in page for k in (t.get("attachments") or {}).get("media_keys") or []}
            media = [m for m in self._world_json("media.json") if m["media_key"] in keys]
            if media:
                includes["media"] = [_x_pick(m, ("media_key", "type"), query.get("media.fields")) for m in media]
        if includes:
            answer["includes"] = includes
        answer["meta"] = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"], "result_count": len(page)}
        if len(chosen) > len(page):
            answer["meta"]["next_token"] = _base36(int(page[-1]["id"]))
        return self._json(answer, self._x_rate_headers())


# Placeholder credentials the world lends to the process while its servers run (`World.lend_env`).
# They are only ever sent to the loopback demo servers: the demo's settings point the platforms'
# API addresses at them. A variable the user set is never replaced.
DEMO_TOKEN = "ccqm-demo-placeholder-token-for-the-loopback-world"
_lent: dict[str, tuple[str | None, int]] = {}  # variable -> (value before, worlds lending it)
_lent_lock = threading.Lock()


@dataclass
class World:
    """The running servers; `sites` maps a site folder's name to its origin."""

    sites: dict[str, str] = field(default_factory=dict)
    mastodon: str = ""
    bluesky: str = ""
    graph: str = ""
    x: str = ""
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    _env: list[str] = field(default_factory=list)

    def lend_env(self, names: Iterable[str]) -> None:
        """Set each variable that is unset (or blank) to DEMO_TOKEN until the world closes, so the
        collectors that read a token from the environment reach the world with none configured.
        Worlds may overlap: a variable goes back to what it was when the last world lending it closes."""
        with _lent_lock:
            for name in dict.fromkeys(names):
                blank = not os.environ.get(name, "").strip()
                if name in _lent:  # lent already (by this world or another): lent again if it was taken away
                    if name not in self._env:
                        before, count = _lent[name]
                        _lent[name] = (before, count + 1)
                        self._env.append(name)
                elif blank:
                    _lent[name] = (os.environ.get(name), 1)
                    self._env.append(name)
                else:
                    continue  # the user's own value: left alone
                if blank:
                    os.environ[name] = DEMO_TOKEN

    def _return_env(self) -> None:
        with _lent_lock:
            for name in self._env:
                before, count = _lent.pop(name)
                if count > 1:
                    _lent[name] = (before, count - 1)
                elif os.environ.get(name) == DEMO_TOKEN:  # not changed since: put back what was there
                    if before is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = before
            self._env.clear()

    def close(self) -> None:
        self._return_env()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_GRAPH_DEFAULTS = {"post": {"id", "created_time", "message", "story"}, "media": {"id"}}


def _graph_fields(spec: str | None, kind: str) -> set[str]:
    """The top-level names in a Graph `fields` list (`attachments{url}` and `reactions.summary(...)`
    count as `attachments` and `reactions`); the node type's defaults without one."""
    if not spec:
        return _GRAPH_DEFAULTS[kind]
    names, depth, current = [], 0, ""
    for ch in spec:
        depth += (ch in "{(") - (ch in "})")
        if ch == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += ch
    names.append(current)
    return {"id"} | {m.group(0) for m in (re.match(r"[A-Za-z_]+", n.strip()) for n in names) if m}


def _graph_cursor(offset: int) -> str:
    """An opaque Graph-like cursor for a position in an edge."""
    return base64.urlsafe_b64encode(f"ccqm-world:{offset}".encode()).decode().rstrip("=")


def _graph_offset(cursor: str) -> int:
    """The position a cursor stands for; ValueError for anything this world did not hand out."""
    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    if not re.fullmatch(r"ccqm-world:[0-9]{1,6}", text):
        raise ValueError(cursor)
    return int(text.rpartition(":")[2])


def _unix(stamp: str) -> int:
    return int(dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp())


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def _x_pick(obj: dict, always: tuple[str, ...], fields: str | None) -> dict:
    wanted = list(always) + [f for f in (fields or "").split(",") if f]
    return {k: obj[k] for k in dict.fromkeys(wanted) if k in obj}


def _x_tweet(tweet: dict, query: dict) -> dict:
    """A post with X's default fields (id, text, edit history) and the `tweet.fields` asked for."""
    return _x_pick(tweet, ("id", "text", "edit_history_tweet_ids"), query.get("tweet.fields"))


def _x_user(user: dict, query: dict) -> dict:
    return _x_pick(user, ("id", "name", "username"), query.get("user.fields"))


def _x_not_found(parameter: str, value: str) -> dict:
    return {"value": value, "detail": f"Could not find user with {parameter}: [{value}].", "title": "Not Found Error",
            "resource_type": "user", "parameter": parameter, "resource_id": value, "type": _X_NOT_FOUND}


def _x_entities(tweet: dict, kind: str, key: str) -> set[str]:
    """Lower-cased mentions' usernames or hashtags' tags, from the post and its long form."""
    return {str(e.get(key, "")).lower() for source in (tweet, tweet.get("note_tweet") or {})
            for e in (source.get("entities") or {}).get(kind) or []}


def _x_kind(tweet: dict, kind: str) -> bool:
    return any(r.get("type") == kind for r in tweet.get("referenced_tweets") or [])


def _x_matches(tweet: dict, users: dict, query: str) -> bool:
    """Recent search, for the operators the collectors use: `@name`, `#tag`, `from:name`, words, `OR`
    between terms (otherwise all must match) and `-` before a term (`-is:retweet`)."""
    tokens = query.replace("(", " ").replace(")", " ").split()
    author = (users.get(tweet["author_id"]) or {}).get("username", "").lower()

    def has(term: str) -> bool:
        term = term.lower()
        if term.startswith("@"):
            return term[1:] in _x_entities(tweet, "mentions", "username")
        if term.startswith("#"):
            return term[1:] in _x_entities(tweet, "hashtags", "tag")
        if term == "is:retweet":
            return _x_kind(tweet, "retweeted")
        if term.startswith("from:"):
            return term[5:] == author
        text = ((tweet.get("note_tweet") or {}).get("text") or tweet.get("text") or "").lower()
        return term in text

    wanted = [t for t in tokens if t != "OR" and not t.startswith("-")]
    unwanted = [t[1:] for t in tokens if t.startswith("-") and len(t) > 1]
    found = (any if "OR" in tokens else all)(has(t) for t in wanted)
    return found and not any(has(t) for t in unwanted)


def _serve(world: World, root: Path, kind: str) -> str:
    handler = type(f"{kind.title()}Handler", (_Handler,),
                   {"root": root, "kind": kind, "state": {}, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name=f"world-{kind}-{root.name}").start()
    world._servers.append(server)
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def serve_world(root: Path) -> World:
    """Start every server of the world under `root` on 127.0.0.1 and return their addresses."""
    world = World()
    for site in sorted(p for p in (root / "sites").iterdir() if p.is_dir()):
        world.sites[site.name] = _serve(world, site, "site")
    for kind in ("mastodon", "bluesky", "graph", "x"):
        if (root / kind).is_dir():
            setattr(world, kind, _serve(world, root / kind, kind))
    return world

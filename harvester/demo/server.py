"""A small world of websites and social APIs served on 127.0.0.1, for the demo and the tests.

Each folder under `sites/` becomes its own origin (its own port, its own robots.txt), served as
static files with ETag / Last-Modified and 304 answers, like a real web server. `mastodon/` and
`bluesky/` hold real-shaped API bodies; their servers answer the same endpoints the collectors
call in production (account lookup, account statuses with min_id / max_id and Link headers,
getAuthorFeed with cursors). `{{origin}}` in any text body becomes the serving origin.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import mimetypes
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

TEXT_TYPES = (".html", ".xml", ".txt", ".json", ".rss", ".atom")
LAST_MODIFIED = email.utils.formatdate(1_760_000_000, usegmt=True)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ccqm-world/1"
    root: Path
    kind: str  # site, mastodon, bluesky

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


@dataclass
class World:
    """The running servers; `sites` maps a site folder's name to its origin."""

    sites: dict[str, str] = field(default_factory=dict)
    mastodon: str = ""
    bluesky: str = ""
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve(world: World, root: Path, kind: str) -> str:
    handler = type(f"{kind.title()}Handler", (_Handler,), {"root": root, "kind": kind})
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
    if (root / "mastodon").is_dir():
        world.mastodon = _serve(world, root / "mastodon", "mastodon")
    if (root / "bluesky").is_dir():
        world.bluesky = _serve(world, root / "bluesky", "bluesky")
    return world

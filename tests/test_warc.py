"""Raw records and the WARC export: every response kept as received (status line, all headers, the
body still as the server compressed it), snapshots pointing at theirs, and `ccqm export ORG --warc
FILE` writing them as a WARC that warcio reads back with every digest matching what was stored.

A real loopback site crawled by the real harvest into a real DuckDB file; the social platforms
through respx (only the platform's API is stood in for); a schema-5 database upgraded in place."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import zlib

import httpx
import pytest
import respx
from warcio.archiveiterator import ArchiveIterator
from warcio.timeutils import iso_date_to_datetime

from harvester.app.export import export_warc, warc_digest
from harvester.app.harvest import _size, harvest
from harvester.collectors import CollectRequest, facebook, mastodon
from harvester.config.registry import SCHEME, SourceSpec
from harvester.config.settings import HarvestSettings, SchemeSettings, Settings, load_settings
from harvester.items import Item, NextCursor, RawRecord, Snapshot
from harvester.store.db import open_store
from harvester.store.schema import SCHEMA_VERSION
from tests.conftest import database_at_schema, write_config
from tests.loopback import LoopbackServer, serving
from tests.test_collectors import public_http
from tests.test_config import run_ccqm

ORG = "warc-school"
PAGES = 50
HTML = "text/html; charset=utf-8"
NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.timezone.utc)


def html(n: int, links: str = "") -> bytes:
    return (f"<html><head><title>Equality news {n}</title></head><body><main><h1>Equality news {n}</h1>"
            f"<p>This term our pupils led assembly number {n} on belonging, and our staff trained in inclusive "
            f"teaching, as set out in our equality objectives for café mornings with parents.</p>{links}"
            "</main></body></html>").encode("utf-8")


class Site(LoopbackServer):
    """Fifty news pages and a home page linking to them: every third page served gzip-compressed,
    one chunked, one with repeated and non-ASCII headers. `served` holds the bytes each page's
    body went out as."""

    def __init__(self) -> None:
        super().__init__()
        self.served: dict[str, bytes] = {}
        self.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n")
        home = html(-1, "".join(f'<a href="/news/{n}/">news {n}</a>' for n in range(PAGES)))
        self.add("/", 200, {"Content-Type": HTML}, home)
        for n in range(PAGES):
            path, body = f"/news/{n}/", html(n)
            if n == 1:
                self.routes[path] = self.chunked(body)
                self.served[path] = body
            elif n == 2:
                self.routes[path] = self.repeated(body)
                self.served[path] = body
            elif n % 3 == 0:
                self.add(path, 200, {"Content-Type": HTML, "Content-Encoding": "gzip"}, gzip.compress(body, mtime=0))
            else:
                self.add(path, 200, {"Content-Type": HTML}, body)

    def add(self, path: str, status: int, headers: dict, body: bytes) -> None:
        self.routes[path] = (status, headers, body)
        self.served[path] = body

    @staticmethod
    def chunked(body: bytes):
        def route(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", HTML)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for part in (body[:100], body[100:]):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            handler.wfile.write(b"0\r\n\r\n")
        return route

    @staticmethod
    def repeated(body: bytes):
        def route(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", HTML)
            handler.send_header("Content-Length", str(len(body)))
            handler.send_header("Set-Cookie", "first=1; Path=/")
            handler.send_header("Set-Cookie", "second=2; Path=/")
            handler.send_header("X-Note", "café")  # sent as ISO-8859-1, one byte é
            handler.end_headers()
            handler.wfile.write(body)
        return route


def site_settings(tmp_path, site) -> Settings:
    config = write_config(tmp_path / "config", organisations=f"""
[[organisation]]
id = "{ORG}"
name = "WARC School"
kind = "school"
registered = 2026-01-01
step = 3
website = "{site.base}/"
""", settings="[http]\nallow_networks = ['127.0.0.1/32']\n[harvest]\ndelay_seconds = 0.0\nmax_pages_per_site = 100\n")
    return load_settings(config, db=tmp_path / "ccqm.duckdb", out=tmp_path / "dossiers", env={})


def warc_records(path) -> list:
    """(record type, WARC headers, HTTP headers, payload as stored) of each record; warcio checks
    every block and payload digest as it reads (`check_digests="raise"`)."""
    out = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, check_digests="raise"):
            payload = record.raw_stream.read()
            out.append((record.rec_type, record.rec_headers, record.http_headers, payload))
    return out


@pytest.fixture
def crawled(tmp_path):
    with serving(Site) as site:
        settings = site_settings(tmp_path, site)
        report = harvest(settings, settings.organisations)
        assert not report.failed, [o.errors for o in report.outcomes]
        yield settings, site


def test_a_crawled_site_exports_as_a_warc_whose_every_digest_matches_the_store(crawled, tmp_path):
    settings, site = crawled
    with open_store(settings.db_path, read_only=True) as store:
        stored = {r["url"]: r for r in store.raw_records_for(ORG)}
        unpointed = store.con.execute("SELECT count(*) FROM snapshots s LEFT JOIN records r ON r.id = s.record_id "
                                      "WHERE r.id IS NULL").fetchone()[0]
        pages = store.con.execute("SELECT count(*) FROM items WHERE platform = 'website'").fetchone()[0]
    assert pages == PAGES + 1 and unpointed == 0  # every snapshot points at a stored record
    assert len(stored) == PAGES + 1

    done = export_warc(settings, ORG, tmp_path / "site.warc.gz")
    assert (done.responses, done.resources) == (PAGES + 1, 0)
    records = warc_records(done.path)
    assert records[0][0] == "warcinfo" and ORG in records[0][3].decode()
    responses = [r for r in records if r[0] == "response"]
    assert len(responses) >= PAGES  # the floor: a site of 50 pages gives at least 50
    assert len(responses) == PAGES + 1
    for _, warc, http, payload in responses:
        url = warc.get_header("WARC-Target-URI")
        row = stored[url]
        path = url[len(site.base):]
        # the payload digest is the stored SHA-256, and the SHA-256 of the payload read back
        assert warc.get_header("WARC-Payload-Digest") == warc_digest(row["payload_sha256"])
        assert hashlib.sha256(payload).hexdigest() == row["payload_sha256"]
        assert payload == site.served[path]  # the body as it went out: gzip where it was gzip
        assert warc.get_header("WARC-Date") and iso_date_to_datetime(warc.get_header("WARC-Date")) == \
            row["fetched_at"].replace(tzinfo=None)
        # status line and headers as received (the transfer coding, undone, is renamed)
        assert (http.protocol, http.statusline) == ("HTTP/1.1", "200 OK")
        assert (row["http_version"], row["reason"]) == ("HTTP/1.1", "OK")
        renamed = [("X-Crawler-Transfer-Encoding", v) if k.lower() == "transfer-encoding" else (k, v)
                   for k, v in row["headers"]]
        assert http.headers == renamed

    by_path = {warc.get_header("WARC-Target-URI")[len(site.base):]: (http, payload)
               for _, warc, http, payload in responses}
    zipped = by_path["/news/3/"]
    assert zipped[1][:2] == b"\x1f\x8b" and gzip.decompress(zipped[1]) == html(3)
    assert zipped[0].get_header("Content-Encoding") == "gzip"
    assert zipped[0].get_header("Content-Length") == str(len(zipped[1]))
    http, payload = by_path["/news/2/"]
    assert [v for k, v in http.headers if k == "Set-Cookie"] == ["first=1; Path=/", "second=2; Path=/"]
    assert http.get_header("X-Note") == "café" and payload == html(2)
    http, payload = by_path["/news/1/"]
    assert http.get_header("X-Crawler-Transfer-Encoding") == "chunked" and not http.get_header("Transfer-Encoding")
    assert payload == html(1)
    with open_store(settings.db_path, read_only=True) as store:
        chunked = store.raw_record(next(r["id"] for r in stored.values() if r["url"].endswith("/news/1/")))
    assert ("Transfer-Encoding", "chunked") in chunked["headers"]  # the store keeps the header as received


def test_the_snapshot_of_a_page_is_its_record_and_a_second_harvest_adds_no_record(crawled):
    settings, site = crawled
    with open_store(settings.db_path) as store:
        plain, zipped = (store.con.execute(
            "SELECT i.id, s.hash, s.body IS NULL, r.stored_as, r.payload_sha256 FROM items i JOIN snapshots s "
            "ON s.item_id = i.id JOIN records r ON r.id = s.record_id WHERE i.url = ?", [site.url(p)]).fetchone()
            for p in ("/news/4/", "/news/3/"))
        # a page served plainly is kept once, in its record; a gzip one twice: decoded and as served
        assert plain[2] and plain[4] == plain[1] and plain[3] == "zlib"
        assert not zipped[2] and zipped[4] != zipped[1] and zipped[3] == "identity"
        assert store.snapshot_body(plain[0], plain[1]) == html(4)
        assert store.snapshot_body(zipped[0], zipped[1]) == html(3)
        before = store.counts()
    again = harvest(settings, settings.organisations)
    assert again.totals["new"] == 0 and again.totals["changed"] == 0
    with open_store(settings.db_path) as store:
        after = store.counts()
    assert (after["records"], after["snapshots"]) == (before["records"], before["snapshots"])


def test_the_command_writes_the_warc_and_names_an_unknown_organisation(crawled, tmp_path):
    settings, _ = crawled
    common = ("--config", str(settings.config_dir), "--db", str(settings.db_path), "export")
    ran = run_ccqm(*common, ORG, "--warc", str(tmp_path / "out.warc"))
    assert ran.returncode == 0, ran.stderr
    assert f"wrote {PAGES + 1} record(s) for {ORG}" in ran.stdout
    assert sum(1 for r in warc_records(tmp_path / "out.warc") if r[0] == "response") == PAGES + 1
    ran = run_ccqm(*common, "no-such-school", "--warc", str(tmp_path / "x.warc"))
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1 and "'no-such-school'" in ran.stderr
    assert not (tmp_path / "x.warc").exists()
    ran = run_ccqm(*common, ORG, "--warc", str(tmp_path / "no-such-folder" / "x.warc"))
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1 and "cannot write the WARC" in ran.stderr


# -- social: one record holds the API's answer, as received --------------------------------------------

def test_a_mastodon_post_points_at_the_api_answer_as_received(tmp_path):
    base = "https://example.social"
    statuses = [{"id": str(900 - n), "uri": f"{base}/users/news/statuses/{900 - n}", "url": f"{base}/@news/{900 - n}",
                 "created_at": "2026-11-20T09:00:00.000Z", "content": f"<p>Our equality survey, part {n} #iCCQM</p>",
                 "account": {"acct": "news", "url": f"{base}/@news"}, "reblog": None} for n in range(5)]
    answer = json.dumps(statuses, indent=1).encode()  # not how we would serialise it: kept as sent
    zipped = gzip.compress(answer, mtime=0)
    spec = SourceSpec(ORG, "mastodon", "@news@example.social")
    with respx.mock() as router:
        router.get(f"{base}/api/v1/accounts/lookup").mock(return_value=httpx.Response(200, json={"id": "7"}))
        router.get(f"{base}/api/v1/accounts/7/statuses").mock(return_value=httpx.Response(
            200, content=zipped, headers={"Content-Type": "application/json", "Content-Encoding": "gzip",
                                          "X-RateLimit-Remaining": "299"}))
        settings = Settings(tmp_path, tmp_path / "ccqm.duckdb", tmp_path / "d",
                            harvest=HarvestSettings(delay_seconds=0))
        events = list(mastodon.collect(CollectRequest(source=spec, cursor={}, http=public_http(), settings=settings)))
    posts = [e for e in events if isinstance(e, Item)]
    assert len(posts) == 5 and isinstance(events[-1], NextCursor)
    record = posts[0].snapshot.record
    assert all(p.snapshot.record is record for p in posts)  # one answer, one record
    assert record.payload == zipped and record.header("X-RateLimit-Remaining") == "299"
    # what the dossier shows is unchanged: each post's own snapshot is the post
    assert json.loads(posts[0].snapshot.body) == statuses[0]

    with open_store(tmp_path / "ccqm.duckdb") as store:
        store.save_items(posts[:2], NOW)  # a harvest may save one answer's posts in two batches
        store.save_items(posts[2:], NOW)
        rows = store.con.execute("SELECT record_id, count(*) FROM snapshots GROUP BY ALL").fetchall()
        assert rows == [(record.id, 5)] and store.counts()["records"] == 1
        kept = store.raw_record(record.id)
    assert kept["payload"] == zipped and gzip.decompress(kept["payload"]) == answer
    assert kept["payload_sha256"] == hashlib.sha256(zipped).hexdigest()
    assert kept["url"].startswith(f"{base}/api/v1/accounts/7/statuses") and kept["org_id"] == ORG

    config = write_config(tmp_path / "config", organisations=f"""
[[organisation]]
id = "{ORG}"
name = "WARC School"
kind = "school"
registered = 2026-01-01
step = 3
""")
    settings = load_settings(config, db=tmp_path / "ccqm.duckdb", out=tmp_path / "dossiers", env={})
    done = export_warc(settings, ORG, tmp_path / "social.warc")
    [(kind, warc, http, payload)] = [r for r in warc_records(done.path) if r[0] != "warcinfo"]
    assert kind == "response" and payload == zipped and http.get_header("Content-Encoding") == "gzip"
    assert warc.get_header("WARC-Payload-Digest") == warc_digest(kept["payload_sha256"])


def test_a_graph_answer_is_kept_without_the_token_graph_wrote_into_it(tmp_path, monkeypatch):
    token = "EAAGm0PX4ZCpsBAKtestPageToken0123456789"
    monkeypatch.setenv("META_PAGE_TOKEN", token)
    graph, page_id = "https://graph.facebook.com/v21.0", "108451237750213"
    page = {"data": [{"id": f"{page_id}_1", "message": "Our equality week with @iCCQM",
                      "created_time": "2026-11-20T09:15:00+0000"}],
            "paging": {"next": f"{graph}/{page_id}/tagged?access_token={token}&limit=100&after=QVFI"}}
    settings = Settings(config_dir=tmp_path, db_path=tmp_path / "ccqm.duckdb", dossier_dir=tmp_path / "d",
                        harvest=HarvestSettings(delay_seconds=0),
                        scheme=SchemeSettings(facebook_page_id=page_id))
    spec = SourceSpec(SCHEME, "facebook-tagged", page_id)
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{graph}/{page_id}/tagged").mock(side_effect=[httpx.Response(200, json=page),
                                                                  httpx.Response(200, json={"data": []})])
        events = list(facebook.collect_tagged(CollectRequest(source=spec, cursor={}, http=public_http(),
                                                             settings=settings)))
    [post] = [e for e in events if isinstance(e, Item)]
    record = post.snapshot.record
    assert record.redacted == "access tokens" and token.encode() not in record.payload
    assert b"access_token=[redacted]&limit=100" in record.payload
    assert record.header("Content-Length") == str(len(record.payload))
    with open_store(settings.db_path) as store:
        store.save_items([post], NOW)
        kept = store.raw_record(record.id)
        assert token.encode() not in kept["payload"] and kept["redacted"] == "access tokens"


# -- a schema-5 database -------------------------------------------------------------------------------

def test_a_schema_5_database_upgrades_and_its_old_snapshots_export_as_resources(tmp_path):
    db = tmp_path / "ccqm.duckdb"
    con = database_at_schema(db, 5)
    old_body = html(7)
    old_hash = hashlib.sha256(old_body).hexdigest()
    url = "https://warc.example.sch.uk/news/7/"
    con.execute("INSERT INTO items (id, org_id, source_id, platform, kind, native_id, url, title, text, first_seen, "
                "last_seen, content_hash, tags_scheme) VALUES ('old', ?, 's', 'website', 'page', ?, ?, 't', 'x', "
                "now(), now(), 'h', FALSE)", [ORG, url, url])
    con.execute("INSERT INTO attributions VALUES ('old', ?, 'own source', 's', now())", [ORG])
    con.execute("INSERT INTO snapshots VALUES ('old', ?, ?, ?, 200, 'text/html', '{}', ?, ?)",
                [old_hash, url, NOW.replace(tzinfo=None), len(old_body), zlib.compress(old_body)])
    con.close()

    with open_store(db) as store:  # migrations 6 and 7 run
        assert store.schema_version() == SCHEMA_VERSION == 7
        assert store.snapshot_body("old", old_hash) == old_body
        assert store.con.execute("SELECT record_id FROM snapshots WHERE item_id = 'old'").fetchone() == (None,)
        [row] = store.items_for(ORG)
        assert row["snapshot_hash"] == old_hash and row["snapshot_record_id"] is None
        body = html(8)
        record = RawRecord(url=url.replace("7", "8"), fetched_at=NOW, status=200, reason="OK",
                           http_version="HTTP/1.1", headers=(("Content-Type", HTML),), payload=body)
        new = Item(org_id=ORG, source_id="s", platform="website", kind="page", native_id=record.url, url=record.url,
                   title="t", text="y", snapshot=Snapshot(url=record.url, fetched_at=NOW, status=200,
                                                          content_type="text/html", body=body, record=record))
        assert store.save_items([new], NOW) == ["new"]

    config = write_config(tmp_path / "config", organisations=f"""
[[organisation]]
id = "{ORG}"
name = "WARC School"
kind = "school"
registered = 2026-01-01
step = 3
""")
    settings = load_settings(config, db=db, out=tmp_path / "dossiers", env={})
    done = export_warc(settings, ORG, tmp_path / "old.warc.gz")
    assert (done.responses, done.resources) == (1, 1)
    kinds = {r[0]: r for r in warc_records(done.path)}
    _, warc, http, payload = kinds["resource"]
    assert http is None and payload == old_body and warc.get_header("WARC-Target-URI") == url
    assert warc.get_header("WARC-Payload-Digest") == warc_digest(old_hash)
    assert warc.get_header("Content-Type") == "text/html"
    assert kinds["response"][3] == html(8)


# -- memory: a batch counts what it holds --------------------------------------------------------------

def test_a_batch_counts_a_shared_record_once_and_a_plain_page_once():
    answer = b"[" + b"x" * 10_000 + b"]"
    record = RawRecord(url="https://api.example/page", fetched_at=NOW, status=200, reason="OK",
                       http_version="HTTP/1.1", headers=(), payload=answer)
    posts = [Item(org_id="o", source_id="s", platform="mastodon", kind="post", native_id=str(n), url=None,
                  title="", text="post", snapshot=Snapshot(url="https://api.example/page", fetched_at=NOW, status=200,
                                                           content_type="application/json", body=b"{}", record=record))
             for n in range(3)]
    assert [_size(p) for p in posts] == [4 + 2 + len(answer), 4 + 2, 4 + 2]
    body = b"<p>" + b"y" * 5000 + b"</p>"
    plain = RawRecord(url="https://e.org/", fetched_at=NOW, status=200, reason="OK", http_version="HTTP/1.1",
                      headers=(), payload=body)
    page = Item(org_id="o", source_id="s", platform="website", kind="page", native_id="https://e.org/",
                url="https://e.org/", title="", text="yyy", snapshot=Snapshot(url="https://e.org/", fetched_at=NOW,
                                                                            status=200, content_type="text/html",
                                                                            body=body, record=plain))
    assert _size(page) == 3 + len(body)

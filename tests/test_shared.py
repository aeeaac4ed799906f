"""One piece of evidence, several organisations; untrusted bytes stay inert everywhere."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from harvester.app.assess import score
from harvester.app.dossiers import write_dossiers
from harvester.app.harvest import _Batch, _save_group, harvest
from harvester.app.overrides import add_override
from harvester.collectors.mastodon import parse_status
from harvester.config.registry import SourceSpec
from harvester.config.settings import load_settings
from harvester.demo import CONFIG
from harvester.items import Item, utcnow
from harvester.store.db import open_store
from tests.conftest import write_config
from tests.test_config import run_ccqm

ESC = "\x1b"
TRUST = """
[[organisation]]
id = "greenfield-trust"
name = "Greenfield Learning Trust"
kind = "school"
registered = 2026-03-01
step = 4
website = "{site}/"
"""


def test_two_organisations_sharing_a_website_both_have_its_evidence(world, tmp_path):
    registry = (CONFIG / "organisations.toml").read_text(encoding="utf-8")
    registry = registry.replace("{{site:greenfield}}", world.sites["greenfield"]).replace(
        "{{site:castlegate}}", world.sites["castlegate"]).replace("{{site:riverside}}", world.sites["riverside"]).replace(
        "{{mastodon}}", world.mastodon)
    config = write_config(tmp_path / "config", organisations=registry + TRUST.format(site=world.sites["greenfield"]),
                          settings="[http]\nallow_networks = ['127.0.0.1/32']\n[harvest]\ndelay_seconds = 0.0\n"
                                   f"[platforms]\nbluesky_appview_url = '{world.bluesky}'\n"
                                   f"graph_api_url = '{world.graph}'\nx_api_url = '{world.x}'\n")
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})
    both = (settings.organisation("greenfield-primary"), settings.organisation("greenfield-trust"))
    report = harvest(settings, both)
    assert not report.failed
    trust_counts = next(o.counts for o in report.outcomes if o.source.org_id == "greenfield-trust")
    assert trust_counts["new"] > 10  # the shared pages are new evidence for the second organisation too

    before = {o.org.id: o.after for o in score(settings, both)}
    with open_store(settings.db_path, read_only=True) as store:
        school, trust = store.items_for("greenfield-primary"), store.items_for("greenfield-trust")
        shared = {r["id"] for r in school if r["platform"] == "website"} & {r["id"] for r in trust}
        assert len(shared) > 10
        hows = {how for item in shared for _, how in store.attributions(item)}
    assert hows == {"own source", "shared website"}
    for org in both:  # each dossier cites the site's pages, with its own levels
        assert before[org.id].criterion("goals_set").cited
    # each is scored on its own evidence: the school also has its feed and social posts
    assert before["greenfield-primary"].criteria != before["greenfield-trust"].criteria

    top = before["greenfield-trust"].criterion("goals_set").cited[0].item_id
    add_override(settings, "greenfield-trust", top, include=None, exclude="goals_set", note="the trust's, not the school's\x1b[2J",
                 by="A. Validator\x07")
    after = {o.org.id: o.after for o in score(settings, both)}
    assert top not in [c.item_id for c in after["greenfield-trust"].criterion("goals_set").cited]
    assert after["greenfield-primary"].criteria == before["greenfield-primary"].criteria  # untouched
    with open_store(settings.db_path, read_only=True) as store:
        (note, by), = store.con.execute("SELECT note, decided_by FROM overrides").fetchall()
    assert note == "the trust's, not the school's[2J" and by == "A. Validator"  # control bytes gone
    index = write_dossiers(settings, both)
    for org in both:
        page = (index.parent / f"{org.id}.html").read_text(encoding="utf-8")
        assert world.sites["greenfield"] in page


class Hostile(http.server.BaseHTTPRequestHandler):
    """A feed whose title and reason phrase carry terminal escape sequences."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/robots.txt":
            body, kind = b"", "text/plain"
        else:
            body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Evil</title>'
                    f'<item><title>Our pledge {ESC}[2J{ESC}]0;pwned\x07 signed</title>'
                    f'<link>https://example.org/pledge</link><description>We signed the pledge.{ESC}[31m</description>'
                    f'<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>').encode()
            kind = "application/rss+xml"
        self.send_response(200, f"OK {ESC}[2J{ESC}]0;retitled\x07")
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile_feed():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    server.shutdown()
    server.server_close()


def test_escape_sequences_reach_neither_the_log_nor_the_store(tmp_path, hostile_feed):
    config = write_config(tmp_path / "config", organisations=f"""
[[organisation]]
id = "evil"
name = "Evil Feed"
kind = "other"
registered = 2026-01-01
step = 1
feeds = ["{hostile_feed}"]
""", settings="[http]\nallow_networks = ['127.0.0.1/32']\n[harvest]\ndelay_seconds = 0.0\n")
    db = tmp_path / "db.duckdb"
    result = run_ccqm("-v", "--config", str(config), "--db", str(db), "crawl")
    assert result.returncode == 0, result.stderr
    assert " 200 OK " in result.stderr  # the reason phrase was logged ...
    assert ESC not in result.stderr and "\x07" not in result.stderr  # ... made visible, not obeyed
    assert "\\x1b[2J" in result.stderr
    with open_store(db, read_only=True) as store:
        title, text = store.con.execute("SELECT title, text FROM items").fetchone()
        errors = store.con.execute("SELECT string_agg(message, ' ') FROM run_errors").fetchone()[0] or ""
    assert "pledge" in title and ESC not in title and "\x07" not in title
    assert ESC not in text and ESC not in errors


def test_a_mastodon_status_with_a_script_url_is_stored_without_a_url(tmp_path):
    status = {"id": "1", "uri": "https://example.social/users/x/statuses/1", "url": "javascript:alert(1)",
              "content": "<p>We held our first cohesion assembly.\x1b[2J</p>", "created_at": "2026-11-02T10:00:00Z",
              "account": {"acct": "x\x1b]0;t\x07"}, "media_attachments": [], "mentions": [], "tags": []}
    item = parse_status(status, org_id="org", source_id="org/mastodon/@x@example.social", fetched_at=utcnow())
    assert item.url is None
    assert ESC not in item.text and ESC not in (item.author or "")
    data = json.loads(item.snapshot.body)
    assert data["url"] == "javascript:alert(1)"  # the raw record keeps what was received, as evidence
    with open_store(tmp_path / "db.duckdb") as store:
        store.save_item(item, utcnow())
        url, author = store.con.execute("SELECT url, author FROM items").fetchone()
    assert url is None and author == "x]0;t"


def _batch(org: str, site: str, path: str, text: str) -> _Batch:
    """A website source's batch of one page, as a harvest queues it for the writer."""
    spec = SourceSpec(org_id=org, platform="website", locator=site)
    page = Item(org_id=org, source_id=spec.id, platform="website", kind="page", native_id=site + path,
                url=site + path, title="News", text=text)
    return _Batch(spec, [page], "run-1")


def test_a_page_two_organisations_save_in_one_group_commit_is_evidence_for_both(tmp_path):
    """The writer saves every queued batch at once: the same page from two organisations' sources,
    queued together, must still be attributed to each, and counted new for each."""
    batches = [_batch(org, "https://shared.example/", "news/survey/",
                      "Our pupils surveyed families about belonging; 84% said they feel welcome.")
               for org in ("greenfield-trust", "oakfield-primary")]
    with open_store(tmp_path / "ccqm.duckdb") as store:
        assert _save_group(store, batches)
        owners = store.con.execute("SELECT org_id, how FROM attributions ORDER BY org_id").fetchall()
    assert [b.counts["new"] for b in batches] == [1, 1]
    assert owners == [("greenfield-trust", "own source"), ("oakfield-primary", "shared website")]


def test_a_batch_that_cannot_be_written_fails_alone_and_its_group_is_saved(tmp_path):
    """One source's bad batch (text DuckDB refuses) must not cost the sources queued beside it."""
    def batch(org: str, text: str) -> _Batch:
        return _batch(org, f"https://{org}.example/", "", text)

    good, bad, also_good = batch("alpha", "Our goals for 2027."), batch("beta", "broken \udc80 text"), \
        batch("gamma", "We held a cohesion week.")
    with open_store(tmp_path / "ccqm.duckdb") as store:
        assert not _save_group(store, [good, bad, also_good])
        stored = [row[0] for row in store.con.execute("SELECT org_id FROM items ORDER BY org_id").fetchall()]
    assert stored == ["alpha", "gamma"]
    assert bad.error is not None and good.error is None and also_good.error is None
    assert (good.counts["new"], bad.counts["new"], also_good.counts["new"]) == (1, 0, 1)

"""The harvest pipeline on real DuckDB files: one source failing fails only itself, cursors move only
with committed items, an interrupted run says so, and an uncollectable platform is skipped aloud.

Only the collector lookup (`harvester.app.harvest.collector_for`) is replaced, by small fake
collectors; the store is the real one, so nothing here touches the network.
"""

from __future__ import annotations

import time

import pytest

import harvester.app.harvest as harvest_module
from harvester.app.harvest import harvest
from harvester.collectors import collector_for as real_collector_for
from harvester.config.settings import load_settings
from harvester.items import Item, NextCursor, Problem
from harvester.store.db import open_store
from tests.conftest import write_config

ALPHA_SITE = "https://www.alpha.example.org/"
BETA_SITE = "https://www.beta.example.org/"
BETA_FEED = "https://www.beta.example.org/feed.xml"

TWO_ORGS = f"""
[[organisation]]
id = "alpha"
name = "Alpha Primary School"
kind = "school"
registered = 2026-01-05
website = "{ALPHA_SITE}"

[[organisation]]
id = "beta"
name = "Beta Community Larder"
kind = "charity"
registered = 2026-02-09
website = "{BETA_SITE}"
feeds = ["{BETA_FEED}"]
"""

ONE_ORG = f"""
[[organisation]]
id = "alpha"
name = "Alpha Primary School"
kind = "school"
registered = 2026-01-05
website = "{ALPHA_SITE}"
"""

WITH_FACEBOOK = ONE_ORG + """
[organisation.social]
threads = ["https://www.threads.net/@alphaprimary"]
"""

ALPHA_ID = f"alpha/website/{ALPHA_SITE}"
BETA_SITE_ID = f"beta/website/{BETA_SITE}"
BETA_FEED_ID = f"beta/feed/{BETA_FEED}"


def make_settings(tmp_path, organisations: str):
    config = write_config(tmp_path / "config", organisations=organisations)
    return load_settings(config, db=tmp_path / "ccqm.duckdb", out=tmp_path / "dossiers", env={})


def page(spec, n: int) -> Item:
    url = f"{spec.locator.rstrip('/')}/page-{n}/"
    return Item(org_id=spec.org_id, source_id=spec.id, platform=spec.platform,
                kind="page" if spec.platform == "website" else "feed_entry", native_id=url, url=url,
                title=f"Page {n}", text=f"Our equality objectives, part {n}.")


def use_collectors(monkeypatch, collectors: dict):
    """Replace the collector lookup: platform -> fake collector, None for any other platform."""
    monkeypatch.setattr(harvest_module, "collector_for", lambda platform: collectors.get(platform))


def query(settings, sql: str, params=()):
    with open_store(settings.db_path, read_only=True) as store:
        return store.con.execute(sql, list(params)).fetchall()


def stored_cursor(settings, source_id: str) -> dict:
    with open_store(settings.db_path, read_only=True) as store:
        return store.cursor(source_id)


# -- (1) a crashing collector fails only its own source ---------------------------------------------

def test_a_crashing_collector_fails_only_its_source(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, TWO_ORGS)

    def collect(request):
        spec = request.source
        yield page(spec, 1)
        if spec.org_id == "alpha":
            raise RuntimeError("parser blew up on page 2\nwith a second line")
        yield page(spec, 2)
        yield NextCursor({"done": True})

    use_collectors(monkeypatch, {"website": collect, "feed": collect})
    told = []
    report = harvest(settings, settings.organisations, on_source=told.append)

    by_source = {o.source.id: o for o in report.outcomes}
    assert set(by_source) == {ALPHA_ID, BETA_SITE_ID, BETA_FEED_ID}
    assert sorted(o.source.id for o in told) == sorted(by_source)  # progress was told of each source
    failed = by_source[ALPHA_ID]
    assert failed.status == "failed"
    assert [o.source.id for o in report.failed] == [ALPHA_ID]
    assert any(e.startswith(ALPHA_ID) and "unexpected RuntimeError" in e and "parser blew up on page 2" in e
               for e in failed.errors)
    for source_id in (BETA_SITE_ID, BETA_FEED_ID):
        assert by_source[source_id].status == "ok"
        assert by_source[source_id].counts["new"] == 2
        assert by_source[source_id].errors == []

    # The error is recorded once, naming the source, on one line.
    errors = query(settings, "SELECT run_id, org_id, source_id, error, message FROM run_errors")
    assert errors == [(report.run_id, "alpha", ALPHA_ID, "RuntimeError", "parser blew up on page 2")]
    statuses = dict(query(settings, "SELECT source_id, status FROM run_sources WHERE run_id = ?", [report.run_id]))
    assert statuses == {ALPHA_ID: "failed", BETA_SITE_ID: "ok", BETA_FEED_ID: "ok"}
    assert query(settings, "SELECT status FROM runs WHERE id = ?", [report.run_id]) == [("partial",)]

    # The other organisation's items are all stored, and its sources look healthy.
    with open_store(settings.db_path, read_only=True) as store:
        assert store.item_count("beta") == 4
        sources = {s["id"]: s for s in store.source_status("beta") + store.source_status("alpha")}
    assert sources[BETA_SITE_ID]["last_error"] is None and sources[BETA_SITE_ID]["last_success"] is not None
    assert sources[BETA_SITE_ID]["items_total"] == 2
    assert "unexpected RuntimeError" in sources[ALPHA_ID]["last_error"]
    assert sources[ALPHA_ID]["last_success"] is None and sources[ALPHA_ID]["last_error_at"] is not None


def test_a_problem_with_one_url_makes_the_source_partial_not_failed(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, ONE_ORG)

    def collect(request):
        yield page(request.source, 1)
        yield Problem(url=ALPHA_SITE + "broken/", error=ValueError("cannot read this page"))
        yield NextCursor({"page": 1})

    use_collectors(monkeypatch, {"website": collect})
    report = harvest(settings, settings.organisations)

    (outcome,) = report.outcomes
    assert outcome.status == "partial" and outcome.counts["new"] == 1 and outcome.counts["failed"] == 1
    assert query(settings, "SELECT source_id, url, message FROM run_errors") == [
        (ALPHA_ID, ALPHA_SITE + "broken/", "cannot read this page")]
    assert query(settings, "SELECT status FROM runs") == [("ok",)]  # a partial source is not a failed run
    assert stored_cursor(settings, ALPHA_ID) == {"page": 1}


# -- (2) cursors move only with a success -----------------------------------------------------------

def test_a_failure_keeps_the_last_good_cursor_and_a_success_advances_it(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, ONE_ORG)
    received: list[dict] = []
    plan = {"page": 1, "crash": False, "cursor": True}

    def collect(request):
        received.append(dict(request.cursor))
        yield page(request.source, plan["page"])
        if plan["cursor"]:
            yield NextCursor({"page": plan["page"]})
        if plan["crash"]:  # the cursor was yielded, but the source did not finish
            raise RuntimeError("malformed answer")

    use_collectors(monkeypatch, {"website": collect})

    harvest(settings, settings.organisations)
    assert stored_cursor(settings, ALPHA_ID) == {"page": 1}

    plan.update(page=2, crash=True)
    report = harvest(settings, settings.organisations)
    assert report.outcomes[0].status == "failed"
    assert received[1] == {"page": 1}
    assert stored_cursor(settings, ALPHA_ID) == {"page": 1}  # not advanced past the failure
    (last_error,) = query(settings, "SELECT last_error FROM sources WHERE id = ?", [ALPHA_ID])[0]
    assert "malformed answer" in last_error

    plan.update(page=3, crash=False)
    report = harvest(settings, settings.organisations)
    assert report.outcomes[0].status == "ok"
    assert received[2] == {"page": 1}  # the collector resumed from the last good cursor
    assert stored_cursor(settings, ALPHA_ID) == {"page": 3}
    assert query(settings, "SELECT last_error FROM sources WHERE id = ?", [ALPHA_ID]) == [(None,)]

    plan.update(page=4, cursor=False)  # a success that yields no cursor keeps the one it had
    harvest(settings, settings.organisations)
    assert stored_cursor(settings, ALPHA_ID) == {"page": 3}


# -- (3) an interrupted run ---------------------------------------------------------------------------

@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_run_is_recorded_and_the_interrupt_propagates(tmp_path, monkeypatch, interrupt):
    settings = make_settings(tmp_path, ONE_ORG)

    def collect(request):
        yield page(request.source, 1)
        yield NextCursor({"page": 1})
        raise interrupt()

    use_collectors(monkeypatch, {"website": collect})
    with pytest.raises(interrupt):
        harvest(settings, settings.organisations)

    runs = query(settings, "SELECT command, status, finished_at IS NOT NULL FROM runs")
    assert runs == [("crawl", "interrupted", True)]
    assert stored_cursor(settings, ALPHA_ID) == {}  # nothing half-done was taken as done
    with open_store(settings.db_path) as store:  # the file was released: a writer can open it again
        assert store.counts()["runs"] == 1


# -- (4) a platform without a collector ---------------------------------------------------------------

def test_a_facebook_page_without_its_token_is_skipped_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("META_PAGE_TOKEN_ALPHA", raising=False)
    settings = make_settings(tmp_path, WITH_FACEBOOK.replace(
        'threads = ["https://www.threads.net/@alphaprimary"]', 'facebook = ["https://www.facebook.com/alphaprimary"]'))
    use_collectors(monkeypatch, {"website": lambda request: iter([NextCursor({})]),
                                 "facebook": real_collector_for("facebook")})
    report = harvest(settings, settings.organisations)
    (skipped,) = [o for o in report.outcomes if o.source.platform == "facebook"]
    assert skipped.status == "skipped" and "META_PAGE_TOKEN_ALPHA" in skipped.errors[0]
    assert report.failed == []


def test_a_platform_without_a_collector_is_skipped_and_recorded(tmp_path, monkeypatch):
    assert real_collector_for("threads") is None  # the real lookup has none either
    settings = make_settings(tmp_path, WITH_FACEBOOK)
    called: list[str] = []

    def collect(request):
        called.append(request.source.platform)
        yield page(request.source, 1)
        yield NextCursor({})

    use_collectors(monkeypatch, {"website": collect})
    report = harvest(settings, settings.organisations)

    facebook_id = "alpha/threads/https://www.threads.net/@alphaprimary"
    by_source = {o.source.id: o for o in report.outcomes}
    skipped = by_source[facebook_id]
    assert skipped.status == "skipped"
    assert len(skipped.errors) == 1 and "not collected" in skipped.errors[0] and "threads" in skipped.errors[0]
    assert by_source[ALPHA_ID].status == "ok"
    assert called == ["website"]
    assert report.failed == []

    rows = query(settings, "SELECT source_id, org_id, status, new, changed, unchanged, gone, failed "
                           "FROM run_sources WHERE run_id = ? ORDER BY source_id", [report.run_id])
    assert (facebook_id, "alpha", "skipped", 0, 0, 0, 0, 0) in rows
    assert query(settings, "SELECT status FROM runs") == [("ok",)]  # skipping is not failing
    assert query(settings, "SELECT count(*) FROM run_errors") == [(0,)]
    assert query(settings, "SELECT last_attempt, last_error FROM sources WHERE id = ?", [facebook_id]) == [
        (None, None)]


def test_a_source_stops_at_its_time_budget_and_keeps_what_it_had(tmp_path, monkeypatch):
    import dataclasses
    import time

    settings = make_settings(tmp_path, ONE_ORG)
    settings = dataclasses.replace(settings, harvest=dataclasses.replace(settings.harvest, site_budget_seconds=0.3))
    pulled = []

    def collect(request):  # an endless, slow site
        from harvester.items import Checkpoint

        for n in range(1000):
            time.sleep(0.05)
            pulled.append(n)
            yield page(request.source, n)
            yield Checkpoint({"resume_after": n})

    use_collectors(monkeypatch, {"website": collect})
    started = time.monotonic()
    report = harvest(settings, settings.organisations)
    assert time.monotonic() - started < 3
    (outcome,) = report.outcomes
    assert outcome.status == "partial" and "budget" in outcome.errors[-1]
    assert outcome.counts["new"] == len(pulled) and 3 <= len(pulled) < 20
    assert query(settings, "SELECT count(*) FROM items") == [(len(pulled),)]  # nothing fetched was lost
    assert stored_cursor(settings, ALPHA_ID)["resume_after"] >= len(pulled) - 2  # the next run resumes


def test_a_site_of_large_pages_is_saved_as_it_goes_not_held_until_the_end(tmp_path, monkeypatch):
    """Memory stays bounded whatever the pages weigh: a batch is saved once it holds 3 MB."""
    import dataclasses

    settings = make_settings(tmp_path, ONE_ORG)
    settings = dataclasses.replace(settings, harvest=dataclasses.replace(settings.harvest, batch_items=10_000,
                                                                         batch_seconds=3600.0))
    stored_while_crawling = []

    def collect(request):  # 40 pages of 400 kB each: 16 MB if held to the end
        for n in range(40):
            if n == 39:
                time.sleep(1.0)  # the harvest lets go of the database when idle: read it then
                stored_while_crawling.append(query(settings, "SELECT count(*) FROM items")[0][0])
            item = page(request.source, n)
            yield dataclasses.replace(item, text=item.text + " word" * 80_000)

    use_collectors(monkeypatch, {"website": collect})
    report = harvest(settings, settings.organisations)
    assert stored_while_crawling, report.outcomes[0].errors
    assert stored_while_crawling[0] >= 30  # saved in batches of about 3 MB while the crawl went on
    assert query(settings, "SELECT count(*) FROM items") == [(40,)]

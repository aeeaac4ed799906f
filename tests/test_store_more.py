"""More of the DuckDB store: organisations and sources leaving the registry, the classification
cache's key, score blobs old and new, read-only opens, and files that are not a ccqm database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
import tomllib

import pytest

from harvester.config.registry import Organisation
from harvester.errors import StoreError, StoreUnusableError
from harvester.items import Item
from harvester.store.db import open_store
from scoring import (
    CRITERIA, Classification, CriterionResult, Evidence, Override, SignalHit, parse_rubric, score_organisation,
)
from tests.conftest import PROJECT

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
T1 = dt.datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
T2 = dt.datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
T3 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SITE = "https://www.example.org/"
OLD_FEED = "https://www.example.org/feed.xml"
NEW_FEED = "https://www.example.org/news.xml"


def org(org_id: str, *, feeds: tuple[str, ...] = ()) -> Organisation:
    return Organisation(id=org_id, name=f"Org {org_id}", kind="school", registered=dt.date(2026, 1, 5), step=2,
                        website=SITE, feeds=feeds)


def item(org_id: str, source_id: str, text: str = "Our equality objectives for 2027.", n: int = 1) -> Item:
    url = f"{SITE}{org_id}/page-{n}/"
    return Item(org_id=org_id, source_id=source_id, platform="website", kind="page", native_id=url, url=url,
                title="Equality", text=text)


def naive(value: dt.datetime) -> dt.datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


# -- organisations and sources that leave the registry -----------------------------------------------

def test_an_organisation_removed_from_the_registry_is_inactive_and_keeps_its_items(tmp_path):
    db = tmp_path / "ccqm.duckdb"
    alpha, beta = org("alpha"), org("beta")
    with open_store(db) as store:
        store.sync_organisations((alpha, beta), T0)
        store.save_item(item("beta", beta.sources[0].id), T0)
        store.save_item(item("beta", beta.sources[0].id, n=2), T0)

    with open_store(db) as store:
        store.sync_organisations((alpha,), T1)
        assert store.con.execute("SELECT id, active FROM organisations ORDER BY id").fetchall() == [
            ("alpha", True), ("beta", False)]
        assert store.item_count("beta") == 2  # its evidence is kept
        assert store.source_status("beta") == []  # its sources are retired with it
        assert [s["id"] for s in store.source_status("alpha")] == [alpha.sources[0].id]

    with open_store(db) as store:  # coming back reactivates it, with its items
        store.sync_organisations((alpha, beta), T2)
        assert store.con.execute("SELECT active FROM organisations WHERE id = 'beta'").fetchone() == (True,)
        assert store.item_count("beta") == 2
        assert [s["id"] for s in store.source_status("beta")] == [beta.sources[0].id]


def test_a_replaced_feed_is_retired_and_re_adding_it_un_retires_it(tmp_path):
    db = tmp_path / "ccqm.duckdb"
    before, after = org("alpha", feeds=(OLD_FEED,)), org("alpha", feeds=(NEW_FEED,))
    site, old_feed = before.sources
    new_feed = after.sources[1]
    with open_store(db) as store:
        store.sync_organisations((before,), T0)
        store.finish_source(site, cursor={"pages": 3}, error=None, now=T0)
        store.finish_source(old_feed, cursor={"etag": "abc"}, error=None, now=T1)
        assert store.last_harvest("alpha") == T1

    with open_store(db) as store:
        store.sync_organisations((after,), T2)
        assert [(s["platform"], s["locator"]) for s in store.source_status("alpha")] == [
            ("feed", NEW_FEED), ("website", SITE)]
        retired = dict(store.con.execute("SELECT id, retired_at FROM sources").fetchall())
        assert retired == {site.id: None, old_feed.id: naive(T2), new_feed.id: None}
        assert store.last_harvest("alpha") == T0  # a retired source's success is not the org's

        store.sync_organisations((after,), T3)  # still absent: retired when it first left
        assert store.con.execute("SELECT retired_at FROM sources WHERE id = ?", [old_feed.id]).fetchone() == (
            naive(T2),)

    with open_store(db) as store:
        store.sync_organisations((before,), T3)
        assert [(s["platform"], s["locator"]) for s in store.source_status("alpha")] == [
            ("feed", OLD_FEED), ("website", SITE)]
        assert store.con.execute("SELECT retired_at FROM sources WHERE id = ?", [old_feed.id]).fetchone() == (None,)
        assert store.cursor(old_feed.id) == {"etag": "abc"}  # it resumes where it stopped
        assert store.con.execute("SELECT retired_at IS NOT NULL FROM sources WHERE id = ?",
                                 [new_feed.id]).fetchone() == (True,)


# -- the classification cache ------------------------------------------------------------------------

def classification(version: str) -> Classification:
    hit = SignalHit(name="stated goal", weight=0.45, explain="Names goals", spans=((13, 23),), quote="objectives")
    return Classification(criteria={c: CriterionResult(score=0.7 if c == "goals_set" else 0.0,
                                                       signals=(hit,) if c == "goals_set" else ())
                                    for c in CRITERIA},
                          steps=(5,), areas=("governance",), rubric_version=version)


def test_classifications_are_returned_only_for_their_text_and_rubric_version(tmp_path):
    page = item("alpha", "alpha/website/" + SITE)
    with open_store(tmp_path / "ccqm.duckdb") as store:
        store.save_item(page, T0)
        (row,) = store.items_for("alpha")
        assert row["content_hash"] == page.content_hash
        store.save_classifications([(page.id, page.content_hash, classification("v1"))], T0)

        assert store.classifications([row], "v1") == {page.id: classification("v1")}
        assert store.classifications([row], "v2") == {}  # another rubric version: classify again
        assert store.classifications([], "v1") == {}

        store.save_item(item("alpha", "alpha/website/" + SITE, text="Our equality objectives for 2028."), T1)
        (changed,) = store.items_for("alpha")
        assert changed["content_hash"] != page.content_hash
        assert store.classifications([changed], "v1") == {}  # the text changed: the cached result is stale

        store.save_item(page, T2)  # the old text is back: so is its classification
        (reverted,) = store.items_for("alpha")
        assert store.classifications([reverted], "v1") == {page.id: classification("v1")}


# -- score blobs -------------------------------------------------------------------------------------

def a_score():
    ev = Evidence(id="a", org_id="alpha", platform="website", title="", text="x", published=T0)
    classes = {"a": Classification(criteria={c: CriterionResult(score=1.0) for c in CRITERIA}, steps=(1, 2, 3),
                                   rubric_version="test")}
    note = Override(item_id="a", action="note", criterion=None, note="seen the poster", by="AV", at=T0, id="n1")
    rubric = parse_rubric(tomllib.loads((PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8")))
    return score_organisation("alpha", [ev], classes, [note], rubric, T1)


def insert_score_run(store, run_id: str, result: str, scored_at: dt.datetime = T1) -> None:
    store.con.execute("INSERT INTO score_runs VALUES (?, 'alpha', ?, 'test', NULL, ?, NULL)",
                      [run_id, naive(scored_at), result])


def test_an_unversioned_score_blob_still_loads(tmp_path):
    score = a_score()
    assert score.notes and score.criteria[0].cited  # the blob has times, notes and citations in it
    with open_store(tmp_path / "ccqm.duckdb") as store:
        insert_score_run(store, "old1", json.dumps(dataclasses.asdict(score), default=str))
        assert store.latest_score("alpha") == score
        assert store.latest_score_and_changes("alpha") == (score, [])


def test_a_saved_score_round_trips_with_its_changes(tmp_path):
    score = a_score()
    with open_store(tmp_path / "ccqm.duckdb") as store:
        store.save_score(score, ["Goals set: newly cited a"])
        assert store.latest_score_and_changes("alpha") == (score, ["Goals set: newly cited a"])
        raw = json.loads(store.con.execute("SELECT result FROM score_runs").fetchone()[0])
        assert raw["format"] == "score" and isinstance(raw["v"], int)


def test_a_score_blob_from_a_newer_ccqm_asks_for_an_upgrade(tmp_path):
    db = tmp_path / "ccqm.duckdb"
    with open_store(db) as store:
        insert_score_run(store, "new1", json.dumps({"format": "score", "v": 99, "data": {}}))
    with pytest.raises(StoreError) as err:
        with open_store(db, read_only=True) as store:
            store.latest_score("alpha")
    message = str(err.value)
    assert "v99" in message and "upgrade" in message and str(db) in message
    assert "\n" not in message


# -- read-only opens and unusable files ----------------------------------------------------------------

def test_a_read_only_open_never_creates_a_missing_file(tmp_path):
    db = tmp_path / "not-yet" / "ccqm.duckdb"
    with pytest.raises(StoreError) as err:
        with open_store(db, read_only=True):
            pass
    assert not isinstance(err.value, StoreUnusableError)
    assert "no database yet" in str(err.value)
    assert not db.exists() and not db.parent.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_open_does_not_change_an_existing_file(tmp_path):
    db = tmp_path / "ccqm.duckdb"
    with open_store(db) as store:
        store.sync_organisations((org("alpha"),), T0)
    before = db.read_bytes()
    with open_store(db, read_only=True) as store:
        assert store.counts()["organisations"] == 1
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ccqm.duckdb"]


def make_directory(path):
    path.mkdir()


def make_sqlite(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()


def make_other(path):
    path.write_bytes(b"just some text, not a database at all\n")


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("make, says", [(make_directory, "folder"), (make_sqlite, "SQLite"),
                                        (make_other, "not a DuckDB database")])
def test_a_path_that_is_not_a_duckdb_database_is_one_clear_usage_error(tmp_path, make, says, read_only):
    path = tmp_path / "given.db"
    make(path)
    before = None if path.is_dir() else path.read_bytes()
    with pytest.raises(StoreUnusableError) as err:
        with open_store(path, read_only=read_only):
            pass
    assert err.value.exit_code == 2
    message = str(err.value)
    assert message.startswith(f"{path}: ") and says in message
    assert "\n" not in message
    assert err.value.__cause__ is None  # ours, not a library's, error
    if before is not None:
        assert path.read_bytes() == before  # the file is left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given.db"]  # no WAL or new file beside it


def test_an_empty_file_is_either_a_new_database_or_one_clear_usage_error(tmp_path):
    path = tmp_path / "touched.duckdb"
    path.write_bytes(b"")
    try:
        with open_store(path) as store:
            assert store.counts()["organisations"] == 0
    except StoreUnusableError as exc:
        assert exc.exit_code == 2 and "IO Error" not in str(exc)


def test_a_score_blob_written_before_claims_were_recorded_still_loads(tmp_path):
    score = a_score()
    data = dataclasses.asdict(score)
    del data["claims"]
    with open_store(tmp_path / "ccqm.duckdb") as store:
        insert_score_run(store, "v1", json.dumps({"format": "score", "v": 1, "data": data}, default=str))
        assert store.latest_score("alpha") == score and score.claims == ()

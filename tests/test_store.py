"""The DuckDB store: migrations, idempotent writes, snapshots, and clear errors."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import pytest

from harvester.errors import StoreError
from harvester.items import Item, Snapshot
from harvester.store.db import SCHEMA_VERSION, open_store

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)


def page(text: str, body: bytes) -> Item:
    snap = Snapshot(url="https://example.org/equality/", fetched_at=NOW, status=200, content_type="text/html",
                    body=body, headers={"etag": '"a"'})
    return Item(org_id="org", source_id="org/website/https://example.org/", platform="website", kind="page",
                native_id="https://example.org/equality/", url="https://example.org/equality/", title="Equality",
                text=text, snapshot=snap, etag='"a"')


def test_schema_is_created_once_and_recorded(tmp_path):
    db = tmp_path / "ccqm.duckdb"
    with open_store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
    with open_store(db) as store:  # reopening applies nothing twice
        rows = store.con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
        assert rows == SCHEMA_VERSION


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    db = tmp_path / "ccqm.duckdb"
    with open_store(db) as store:
        store.con.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', now())")
    with pytest.raises(StoreError, match="newer than this ccqm"):
        with open_store(db):
            pass


def test_saving_the_same_item_twice_adds_nothing_and_a_change_keeps_both_versions(tmp_path):
    with open_store(tmp_path / "ccqm.duckdb") as store:
        assert store.save_item(page("We asked 200 pupils.", b"<p>v1</p>"), NOW) == "new"
        assert store.save_item(page("We asked 200 pupils.", b"<p>v1</p>"), NOW) == "unchanged"
        assert store.counts()["items"] == 1 and store.counts()["snapshots"] == 1
        assert store.save_item(page("We asked 250 pupils.", b"<p>v2</p>"), NOW) == "changed"
        assert store.counts()["items"] == 1 and store.counts()["snapshots"] == 2
        item_id = page("", b"").id
        import hashlib
        assert store.snapshot_body(item_id, hashlib.sha256(b"<p>v1</p>").hexdigest()) == b"<p>v1</p>"


def test_a_gone_page_keeps_its_evidence(tmp_path):
    with open_store(tmp_path / "ccqm.duckdb") as store:
        item = page("Our equality objectives for 2027.", b"<p>goals</p>")
        store.save_item(item, NOW)
        assert store.mark_gone(item.id, NOW)
        row = store.con.execute("SELECT text, gone_at FROM items WHERE id = ?", [item.id]).fetchone()
        assert row[0] == "Our equality objectives for 2027." and row[1] is not None
        assert store.counts()["snapshots"] == 1


def hold(db, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r})
        print("held", flush=True)
        time.sleep({seconds})
        """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_command_waits_its_turn_while_another_process_holds_the_database(tmp_path, caplog):
    import time

    from harvester.store import db as store_module

    db = tmp_path / "ccqm.duckdb"
    with open_store(db):
        pass
    holder = hold(db, 1.5)
    started = time.monotonic()
    with open_store(db) as store:  # waits for the holder to finish, then works
        assert store.schema_version() == SCHEMA_VERSION
    assert 0.5 < time.monotonic() - started < 10
    holder.wait()

    holder = hold(db, 30)
    try:
        store_module.LOCK_WAIT_SECONDS, saved = 1.0, store_module.LOCK_WAIT_SECONDS
        with pytest.raises(StoreError) as err:
            with open_store(db):
                pass
        assert str(db) in str(err.value) and "in use by another ccqm process" in str(err.value)
        assert "\n" not in str(err.value)
    finally:
        store_module.LOCK_WAIT_SECONDS = saved
        holder.kill()
        holder.wait()
    with open_store(db) as store:  # nothing was lost
        assert store.schema_version() == SCHEMA_VERSION


def test_decisions_recorded_before_the_machines_scores_were_kept_upgrade_and_stay(tmp_path):
    """A database of schema 6 keeps its validators' decisions through the upgrade; they read back
    with no machine's score (which the report card then leaves out), and new ones record it."""
    from scoring import Override, agreement
    from tests.conftest import database_at_schema

    db = tmp_path / "ccqm.duckdb"
    con = database_at_schema(db, 6)
    con.execute("INSERT INTO overrides VALUES ('o1', 'org', 'item-1', 'exclude', 'goals_set', 'not theirs', 'AV', "
                "TIMESTAMP '2026-10-01 09:00:00')")
    con.close()
    with open_store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        store.add_override("org", Override(item_id="item-2", action="include", criterion="goals_set", note="", by="AV",
                                           at=NOW, machine=(("goals_set", 0.3),), machine_scorer="r+m",
                                           judged_text="abc"))
        old, new = store.overrides_for("org")
    assert (old.id, old.action, old.criterion, old.note, old.machine, old.judged_text) == \
        ("o1", "exclude", "goals_set", "not theirs", (), "")
    assert (new.machine, new.machine_scorer, new.judged_text) == ((("goals_set", 0.3),), "r+m", "abc")
    goals = {a.criterion: a for a in agreement([old, new], 0.5)}["goals_set"]
    assert (goals.decided, goals.added) == (1, 1)

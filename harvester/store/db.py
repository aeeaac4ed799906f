"""The DuckDB store: the only module that speaks SQL.

Open it briefly for one unit of work (`with open_store(path) as store:`) and close it again, so
that another process (a validator's `ccqm rescore`) can take the file in between. Opening applies
any pending numbered migration, each in one transaction with the row that records it; a database
newer than this code is refused rather than guessed at. Times are stored as naive UTC.

Writes are idempotent: items upsert on their stable id and a snapshot is stored once per
(item, body hash), so running the same harvest twice adds nothing.

Raw records (`records`): each response a snapshot came from, as received, stored once however many
snapshots point at it (`snapshots.record_id`), and only along with a snapshot that is new. A
snapshot whose body is its record's payload byte for byte keeps none of its own (`body` NULL;
`snapshot_body` reads it from the record), so whatever deletes records (retention, erasure) must
delete or fill in those snapshots too. Snapshots from before schema 6 have no record.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import time
import uuid
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import duckdb

from harvester.config.registry import SCHEME, Organisation, SourceSpec
from harvester.config.scheme import normal_handle, profile_of
from harvester.errors import StoreError, StoreUnusableError
from harvester.items import Item, RawRecord, Snapshot, strip_controls, utcnow
from harvester.store import blobs
from harvester.store.schema import MIGRATIONS, SCHEMA_VERSION
from scoring.model import Classification, OrgScore, Override

log = logging.getLogger("ccqm.store")
# No extension is ever downloaded or loaded behind our back (a SQLite file given as --db would
# otherwise make DuckDB fetch its sqlite extension over the network).
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# A harvest's short write sessions: one thread keeps each batch's save from adding a per-thread
# working set to the harvest's peak memory; they only insert and look up by key.
LEAN_CONFIG = {**DUCKDB_CONFIG, "threads": 1, "max_vacuum_tasks": 0}



def _naive(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.timezone.utc) if value is not None else None


def check_usable(path: Path) -> None:
    """A clear refusal for a path that is not a DuckDB database (a folder, SQLite, any other file)."""
    if path.is_dir():
        raise StoreUnusableError("is a folder, not a database file (give --db a file path)", path=str(path))
    if path.exists() and path.stat().st_size == 0:
        raise StoreUnusableError("is an empty file, not a DuckDB database; delete it or give --db a new path",
                                 path=str(path))
    if path.exists():
        with path.open("rb") as fh:
            head = fh.read(16)
        if head[8:12] != b"DUCK":
            what = "a SQLite database" if head.startswith(b"SQLite format 3") else "not a DuckDB database"
            raise StoreUnusableError(f"{what}; give --db a DuckDB file ccqm made, or a new path", path=str(path))


# Raw records served uncompressed are the one copy of their body (their snapshots keep none): they
# get the snapshots' level. Records the server compressed are kept as they came.
RECORD_ZLIB_LEVEL = 6
INSERT_CHUNK = 100  # rows a statement: DuckDB's memory for one insert grows with it, its speed barely
LOCK_WAIT_SECONDS = 300.0  # how long a command waits its turn for a database another process holds
SAY_WAITING_AFTER = 3.0


def _connect(path: Path, read_only: bool, config: dict = DUCKDB_CONFIG) -> duckdb.DuckDBPyConnection:
    """A connection, waiting (bounded) while another ccqm process holds the file: a harvest holds it
    a batch at a time and a rescore a second or two, so each gets its turn instead of failing."""
    started, pause, said = time.monotonic(), 0.05, False
    while True:
        try:
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            if "lock" not in message.lower():
                raise StoreError(message, path=str(path)) from None
            waited = time.monotonic() - started
            if waited >= LOCK_WAIT_SECONDS:
                raise StoreError(f"still in use by another ccqm process after {waited:.0f} s; try again when it "
                                 "finishes", path=str(path)) from None
            if waited >= SAY_WAITING_AFTER and not said:
                log.warning("%s: in use by another ccqm process (a harvest saving a batch, or a rescore); "
                            "waiting for it, up to %.0f s", path, LOCK_WAIT_SECONDS)
                said = True
            time.sleep(pause + random.uniform(0, pause))
            pause = min(pause * 1.5, 0.5)
        except OSError as exc:
            raise StoreError(exc.strerror or str(exc), path=str(path)) from None


@contextmanager
def open_store(path: str | Path, *, read_only: bool = False, lean: bool = False) -> Iterator["Store"]:
    """Open the database for one unit of work, migrating it first (unless read-only), and always
    close it. Read-only opens never create, migrate or change the file. `lean` is for a harvest's
    batch saves (see LEAN_CONFIG)."""
    path = Path(path)
    check_usable(path)
    if read_only and not path.exists():
        raise StoreError("no database yet: run `ccqm crawl` or `ccqm demo` first", path=str(path))
    con = _connect(path, read_only, LEAN_CONFIG if lean else DUCKDB_CONFIG)
    store = Store(con, path)
    try:
        if not read_only:
            store.ensure_schema()
        elif store.check_version() < SCHEMA_VERSION:
            raise StoreError(f"database schema v{store.schema_version()} is older than this ccqm "
                             f"(v{SCHEMA_VERSION}); run `ccqm score` once to upgrade it", path=str(path))
        yield store
    except duckdb.Error as exc:
        raise StoreError(str(exc).splitlines()[0], path=str(path)) from exc
    except blobs.BlobError as exc:
        raise StoreError(str(exc), path=str(path)) from None
    finally:
        con.close()


class Store:
    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path):
        self.con, self.path = con, path

    # -- schema -------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The newest migration applied; 0 for a new file. (One cheap query: this runs on every
        open, and a harvest opens the database once a batch.)"""
        try:
            return self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
        except duckdb.CatalogException:
            return 0

    def check_version(self) -> int:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(f"database schema v{version} is newer than this ccqm (v{SCHEMA_VERSION}); "
                             "upgrade ccqm", path=str(self.path))
        return version

    def ensure_schema(self) -> None:
        """Apply pending migrations; safe to call on every open."""
        version = self.check_version()
        if version == SCHEMA_VERSION:
            return
        self.con.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                         "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
        for number, (name, sql) in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            self.con.execute("BEGIN")
            try:
                self.con.execute(sql)
                self.con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                                 [number, name, _naive(utcnow())])
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise

    def _tx(self):
        return _Transaction(self)

    def batch(self):
        """One transaction around many writes (a harvest's batch of items): all or nothing."""
        return _Transaction(self)

    # -- registry ------------------------------------------------------------------------------
    def sync_organisations(self, orgs: tuple[Organisation, ...], now: dt.datetime,
                           scheme: tuple[SourceSpec, ...] = ()) -> None:
        """Mirror the registry: upsert every organisation and source (and the scheme's own sources),
        mark dropped ones inactive, and keep the registry's handles for attributing mentions."""
        n = _naive(now)
        with self._tx():
            self.sync_handles(orgs, now)
            self.con.execute("UPDATE organisations SET active = FALSE")
            self.con.execute("UPDATE sources SET retired_at = coalesce(retired_at, ?) WHERE platform <> 'manual'", [n])
            # one statement each for all organisations and all sources (an upsert a row cost ~5 ms:
            # seconds for a city's thousand organisations before the crawl began)
            rows = list({org.id: (org.id, org.name, org.kind, org.registered, org.step, org.website)
                         for org in orgs}.values())
            if rows:
                self.con.execute(
                    "INSERT INTO organisations SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), "
                    "unnest($6), $7, TRUE ON CONFLICT (id) DO UPDATE SET "
                    "name = excluded.name, kind = excluded.kind, registered = excluded.registered, "
                    "claimed_step = excluded.claimed_step, website = excluded.website, "
                    "synced_at = excluded.synced_at, active = TRUE", [*map(list, zip(*rows)), n])
            specs = list({spec.id: (spec.id, spec.org_id, spec.platform, spec.locator)
                          for spec in [s for org in orgs for s in org.sources] + list(scheme)}.values())
            if specs:
                self.con.execute(
                    "INSERT INTO sources (id, org_id, platform, locator) SELECT unnest($1), unnest($2), "
                    "unnest($3), unnest($4) ON CONFLICT (id) DO UPDATE SET retired_at = NULL",
                    list(map(list, zip(*specs))))

    # -- sources and cursors -------------------------------------------------------------------
    def cursor(self, source_id: str) -> dict:
        row = self.con.execute("SELECT cursor FROM sources WHERE id = ?", [source_id]).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    def page_validators(self, source_id: str) -> dict[str, tuple[str | None, str | None]]:
        """ETag and Last-Modified per page URL this source stored, for conditional requests. (By the
        source, not through the organisation's attributions: a third of the cost, which grew with the
        database; a page another source stored first is fetched unconditionally, no more.)"""
        rows = self.con.execute(
            "SELECT native_id, etag, last_modified FROM items WHERE source_id = ? AND platform = 'website' "
            "AND gone_at IS NULL AND (etag IS NOT NULL OR last_modified IS NOT NULL)", [source_id]).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def save_checkpoint(self, source_id: str, value: dict) -> None:
        """Progress of a source still running, kept with the batch it follows."""
        self.con.execute("UPDATE sources SET cursor = ? WHERE id = ?", [json.dumps(value), source_id])

    def finish_source(self, spec: SourceSpec, *, cursor: dict | None, error: str | None,
                      now: dt.datetime) -> None:
        """Record a source's outcome; a cursor is saved only with the items it covers committed."""
        n = _naive(now)
        if error is None:
            self.con.execute(
                "UPDATE sources SET cursor = coalesce(?, cursor), last_attempt = ?, last_success = ?, "
                "last_error = NULL, items_total = (SELECT count(*) FROM attributions WHERE source_id = ?) WHERE id = ?",
                [json.dumps(cursor) if cursor is not None else None, n, n, spec.id, spec.id])
        else:
            self.con.execute("UPDATE sources SET last_attempt = ?, last_error = ?, last_error_at = ? WHERE id = ?",
                             [n, strip_controls(error), n, spec.id])

    def note_attempt(self, spec: SourceSpec, now: dt.datetime) -> None:
        """A run that was stopped touched this source: neither a success nor a failure."""
        self.con.execute("UPDATE sources SET last_attempt = ? WHERE id = ?", [_naive(now), spec.id])

    # -- items and snapshots -------------------------------------------------------------------
    def save_item(self, item: Item, now: dt.datetime) -> str:
        """Upsert an item, attribute it to the organisation that reached it, store its snapshot if
        new; returns 'new' (new to this organisation), 'changed' or 'unchanged'.

        One item, one snapshot history, and an attribution per organisation: a page of a website
        two organisations share is evidence for both, each attribution saying how it was made."""
        return self.save_items([item], now)[0]

    def save_items(self, items: list[Item], now: dt.datetime) -> list[str]:
        """`save_item` for a batch, in a handful of statements whatever its size (a harvest's batches
        would otherwise pay DuckDB's per-statement cost a dozen times an item). Outcomes in order."""
        if not items:
            return []
        latest = {item.id: item for item in items}  # the same item twice in a batch: the last wins
        ids = list(latest)
        n = _naive(now)
        known = dict(self.con.execute("SELECT id, content_hash FROM items WHERE id IN (SELECT unnest(?))",
                                      [ids]).fetchall())
        owners: dict[str, set[str]] = {}
        for item_id, org_id in self.con.execute("SELECT item_id, org_id FROM attributions "
                                                 "WHERE item_id IN (SELECT unnest(?))", [ids]).fetchall():
            owners.setdefault(item_id, set()).add(org_id)
        outcomes = {}
        for item_id, item in latest.items():
            mine = item.org_id in owners.get(item_id, set()) or (item.org_id == SCHEME and item_id in known)
            outcomes[item_id] = ("new" if item_id not in known or not mine
                                 else "unchanged" if known[item_id] == item.content_hash else "changed")
        with self._tx():
            fresh = [i for i in latest.values() if i.id not in known]
            self._insert_many("items", 20, [
                (i.id, i.org_id, i.source_id, i.platform, i.kind, i.native_id, i.url, i.author, i.title, i.text,
                 _naive(i.published), n, n, n, i.content_hash, i.tags_scheme, None, i.etag, i.last_modified,
                 i.author_id)
                for i in fresh])
            self._update_items([i for i in latest.values() if i.id in known], n)
            self._insert_many("attributions", 5, [
                (i.id, i.org_id, "own source" if not owners.get(i.id) else
                 "shared website" if i.platform == "website" else "shared source", i.source_id, n)
                for i in latest.values() if i.org_id != SCHEME and i.org_id not in owners.get(i.id, set())])
            self._learn_user_ids([i for i in latest.values() if i.org_id != SCHEME and i.kind == "post"], n)
            self._attribute_by_author([i for i in latest.values() if i.org_id == SCHEME], n)
            self._save_snapshots([i for i in latest.values() if i.snapshot is not None], known)
        return [outcomes[i.id] for i in items]

    def _update_items(self, items: list[Item], n: dt.datetime) -> None:
        """Items stored already, updated in one statement per INSERT_CHUNK, bound column by column
        (one UPDATE a row cost 12 ms at 2,500 stored items and 28 ms at 20,000)."""
        for start in range(0, len(items), INSERT_CHUNK):
            part = items[start:start + INSERT_CHUNK]
            columns = [[i.id for i in part], [i.url for i in part], [i.author for i in part],
                       [i.title for i in part], [i.text for i in part], [_naive(i.published) for i in part],
                       [i.content_hash for i in part], [i.tags_scheme for i in part], [i.etag for i in part],
                       [i.last_modified for i in part], [i.author_id for i in part]]
            self.con.execute(
                "UPDATE items SET url = u.url, author = u.author, title = u.title, text = u.text, "
                "published_at = coalesce(u.published, items.published_at), last_seen = $12, "
                "changed_at = CASE WHEN items.content_hash <> u.content_hash THEN $12 ELSE items.changed_at END, "
                "content_hash = u.content_hash, tags_scheme = u.tags_scheme, gone_at = NULL, etag = u.etag, "
                "last_modified = u.last_modified, author_id = coalesce(u.author_id, items.author_id) "
                "FROM (SELECT unnest($1::VARCHAR[]) AS id, unnest($2::VARCHAR[]) AS url, "
                "unnest($3::VARCHAR[]) AS author, unnest($4::VARCHAR[]) AS title, unnest($5::VARCHAR[]) AS text, "
                "unnest($6::TIMESTAMP[]) AS published, unnest($7::VARCHAR[]) AS content_hash, "
                "unnest($8::BOOLEAN[]) AS tags_scheme, unnest($9::VARCHAR[]) AS etag, "
                "unnest($10::VARCHAR[]) AS last_modified, unnest($11::VARCHAR[]) AS author_id) AS u "
                "WHERE items.id = u.id", [*columns, n])

    def _save_snapshots(self, items: list[Item], known: dict[str, str]) -> None:
        """Each item's snapshot if it is new, with the raw records the new ones point at, each kept
        once: a record is written only with a snapshot that needs it, so a page fetched again
        unchanged adds nothing, and an API page of 40 posts is one record. A snapshot whose body is
        its record's payload byte for byte (a page served uncompressed) keeps no copy of its own."""
        again = [i.id for i in items if i.id in known]  # only an item already stored can have this snapshot
        have = set(self.con.execute("SELECT item_id, hash FROM snapshots WHERE item_id IN (SELECT unnest(?))",
                                    [again]).fetchall()) if again else set()
        fresh = [i for i in items if (i.id, i.snapshot.hash) not in have] if have else items
        records: dict[str, tuple[RawRecord, Item]] = {}
        for i in fresh:
            if i.snapshot.record is not None:
                records.setdefault(i.snapshot.record.id, (i.snapshot.record, i))
        if records:
            # A record may be kept already: an API page whose posts a harvest saved in two batches. Only
            # one fetched since the oldest of these can be, and that bound spares a scan of them all.
            since = min(_naive(r.fetched_at) for r, _ in records.values())
            for (kept,) in self.con.execute("SELECT id FROM records WHERE fetched_at >= ? AND id IN (SELECT unnest(?))",
                                            [since, list(records)]).fetchall():
                del records[kept]
        rows = [(r.id, r.url, _naive(r.fetched_at), r.status, r.reason, r.http_version, json.dumps(r.headers),
                 r.payload_sha256, len(r.payload), "identity" if r.content_encoded else "zlib",
                 r.payload if r.content_encoded else zlib.compress(r.payload, RECORD_ZLIB_LEVEL), r.redacted,
                 i.org_id, i.source_id)
                for r, i in records.values()]
        self._insert_many("records", 14, rows, known_new=True)
        self._insert_many("snapshots", 10, [
            (i.id, snap.hash, snap.url, _naive(snap.fetched_at), snap.status, snap.content_type,
             json.dumps(snap.headers), len(snap.body), None if _in_record(snap) else zlib.compress(snap.body, 6),
             snap.record.id if snap.record is not None else None)
            for i in fresh for snap in [i.snapshot]])

    def _learn_user_ids(self, posts: list[Item], n: dt.datetime) -> None:
        """An organisation's own posts tell its accounts' platform ids: kept with its handles, so a
        mention is credited even after the account is renamed (or where the platform shows a
        display name, not a handle, as Facebook does)."""
        authors = {(i.platform, i.author_id): i for i in posts if i.author_id}
        for (platform, user_id), i in authors.items():
            handle = normal_handle(platform, i.author, i.url) or user_id
            self.con.execute("UPDATE handles SET user_id = coalesce(user_id, ?) WHERE platform = ? AND handle = ? "
                             "AND org_id = ?", [user_id, platform, handle, i.org_id])
            self.con.execute("INSERT INTO handles SELECT ?, ?, ?, ?, 'own source', ?, NULL WHERE NOT EXISTS "
                             "(SELECT 1 FROM handles WHERE platform = ? AND (handle = ? OR user_id = ?)) "
                             "ON CONFLICT DO NOTHING",
                             [platform, handle, user_id, i.org_id, n, platform, handle, user_id])

    def _attribute_by_author(self, items: list[Item], n: dt.datetime) -> None:
        """Attribute the scheme's posts (mentions and tags of @iCCQM) to the organisation whose
        handle, or platform user id, wrote them; the others stay unattributed for a validator."""
        if not items:
            return
        rows = self.con.execute("SELECT platform, handle, user_id, org_id FROM handles").fetchall()
        by_handle = {(r[0], r[1]): r[3] for r in rows}
        by_user = {(r[0], r[2]): r[3] for r in rows if r[2]}
        self._insert_many("attributions", 5, [
            (i.id, org, "mention", i.source_id, n) for i in items
            for org in [by_user.get((i.platform, i.author_id))
                        or by_handle.get((i.platform, normal_handle(i.platform, i.author, i.url)))
                        # a registry may give the account by its numeric id (a Facebook Page, an IG account)
                        or by_handle.get((i.platform, (i.author_id or "").lower()))] if org])

    def sync_handles(self, orgs: tuple[Organisation, ...], now: dt.datetime) -> None:
        """The registry's social handles, declared by the organisations (a validator's links, and the
        handles their websites link to, stay)."""
        declared = [(platform, normal_handle(platform, loc), org.id)
                    for org in orgs for platform, loc in org.social if normal_handle(platform, loc)]
        with self._tx():
            kept = {(r[0], r[1], r[2]): (r[3], r[4]) for r in self.con.execute(  # a learnt id, a verification
                "SELECT platform, handle, org_id, user_id, verified_by FROM handles WHERE how = 'registry'").fetchall()}
            self.con.execute("DELETE FROM handles WHERE how = 'registry'")
            self._insert_many("handles", 7, [
                (platform, handle, user_id, org, "registry", _naive(now), verified_by)
                for platform, handle, org in declared
                for user_id, verified_by in [kept.get((platform, handle, org), (None, None))]])

    def verify_handles(self, org_id: str, profile_urls: list[str], now: dt.datetime) -> int:
        """The organisation's website links to these profiles: the accounts are its own. A handle the
        registry did not list is added (its mentions are credited from now on). Returns how many."""
        found = {profile for profile in (profile_of(u) for u in profile_urls) if profile}
        n = _naive(now)
        with self._tx():
            for platform, handle in found:
                self.con.execute(
                    "INSERT INTO handles VALUES (?, ?, NULL, ?, 'website', ?, 'website') ON CONFLICT (platform, handle) "
                    "DO UPDATE SET verified_by = coalesce(handles.verified_by, 'website') "
                    "WHERE handles.org_id = excluded.org_id", [platform, handle, org_id, n])
        return len(found)

    def verified_handles(self, org_id: str) -> set[tuple[str, str]]:
        """(platform, handle) of the accounts confirmed as the organisation's own."""
        return {(r[0], r[1]) for r in self.con.execute(
            "SELECT platform, handle FROM handles WHERE org_id = ? AND verified_by IS NOT NULL", [org_id]).fetchall()}

    def link_handle(self, platform: str, handle: str, org_id: str, by: str, now: dt.datetime) -> int:
        """A validator ties a handle to an organisation; its posts already stored become that
        organisation's evidence (attributed 'linked handle'). Returns how many posts."""
        key = normal_handle(platform, handle)
        n = _naive(now)
        with self._tx():
            user_ids = [r[0] for r in self.con.execute(
                "SELECT DISTINCT author_id FROM items WHERE platform = ? AND author_id IS NOT NULL AND "
                "lower(author) IN (?, ?)", [platform, key, key.split("@")[0]]).fetchall()]
            self.con.execute("INSERT INTO handles VALUES (?, ?, ?, ?, ?, ?, 'validator') ON CONFLICT (platform, handle) "
                             "DO UPDATE SET org_id = excluded.org_id, how = excluded.how, linked_at = excluded.linked_at, "
                             "user_id = coalesce(excluded.user_id, handles.user_id), verified_by = 'validator'",
                             [platform, key, user_ids[0] if len(user_ids) == 1 else None, org_id, f"linked by {by}", n])
            posts = [r for r in self.con.execute(
                "SELECT id, url, author, author_id, source_id FROM items WHERE platform = ?", [platform]).fetchall()
                if normal_handle(platform, r[2], r[1]) == key or (r[3] and r[3] in user_ids)]
            self._insert_many("attributions", 5, [(r[0], org_id, "linked handle", r[4], n) for r in posts])
        return len(posts)

    def add_manual(self, spec: SourceSpec, item: Item, how: str, now: dt.datetime) -> str:
        """Keep a page a validator added by hand (`ccqm evidence add`) as the organisation's evidence,
        saying who added it and why; returns its outcome ('new', 'changed', 'unchanged')."""
        n = _naive(now)
        with self._tx():
            self.con.execute("INSERT INTO sources (id, org_id, platform, locator, last_attempt, last_success) "
                             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET last_attempt = excluded.last_attempt, "
                             "last_success = excluded.last_success, retired_at = NULL",
                             [spec.id, spec.org_id, spec.platform, spec.locator, n, n])
            outcome = self.save_items([item], now)[0]
            self.con.execute("UPDATE attributions SET how = ? WHERE item_id = ? AND org_id = ?",
                             [how, item.id, spec.org_id])
        return outcome

    def unattributed(self) -> list[dict[str, Any]]:
        """The scheme's posts no organisation owns yet, newest first: who wrote them, where."""
        return _dicts(self.con.execute(
            "SELECT i.id, i.platform, i.author, i.author_id, i.url, i.text, i.published_at, i.first_seen "
            "FROM items i WHERE i.org_id = ? AND NOT EXISTS (SELECT 1 FROM attributions a WHERE a.item_id = i.id) "
            "ORDER BY coalesce(i.published_at, i.first_seen) DESC, i.id", [SCHEME]))

    def mark_seen_many(self, item_ids: list[str], now: dt.datetime) -> None:
        if item_ids:
            self.con.execute("UPDATE items SET last_seen = ?, gone_at = NULL WHERE id IN (SELECT unnest(?))",
                             [_naive(now), item_ids])

    def mark_gone(self, item_id: str, now: dt.datetime) -> bool:
        """Mark an item gone (its evidence is kept); True if it was known."""
        updated = self.con.execute("UPDATE items SET gone_at = coalesce(gone_at, ?) WHERE id = ? RETURNING id",
                                   [_naive(now), item_id]).fetchall()
        return bool(updated)

    def snapshot_body(self, item_id: str, hash_: str) -> bytes | None:
        row = self.con.execute("SELECT s.body, r.body, r.stored_as FROM snapshots s LEFT JOIN records r "
                               "ON r.id = s.record_id WHERE s.item_id = ? AND s.hash = ?", [item_id, hash_]).fetchone()
        if not row:
            return None
        if row[0] is None:  # the body is its raw record's payload, kept there only
            return _stored(row[1], row[2])
        return zlib.decompress(row[0])

    # -- raw records -----------------------------------------------------------------------------
    def raw_record(self, record_id: str) -> dict[str, Any] | None:
        """One raw record with its payload as received (`payload`) and its headers as pairs."""
        found = self._raw_records([record_id])
        return found[0] if found else None

    def raw_records_for(self, org_id: str, chunk: int = 50) -> Iterator[dict[str, Any]]:
        """Every raw record of an organisation: those its evidence's snapshots point at and those
        fetched for its own sources, oldest first, read a few at a time (a site's records may be
        far larger than memory)."""
        ids = [r[0] for r in self.con.execute(
            "SELECT id FROM records WHERE id IN (SELECT s.record_id FROM snapshots s JOIN attributions a "
            "ON a.item_id = s.item_id WHERE a.org_id = ?) OR org_id = ? ORDER BY fetched_at, id",
            [org_id, org_id]).fetchall()]
        for start in range(0, len(ids), chunk):
            yield from self._raw_records(ids[start:start + chunk])

    def _raw_records(self, ids: list[str]) -> list[dict[str, Any]]:
        rows = _dicts(self.con.execute("SELECT * FROM records WHERE id IN (SELECT unnest(?)) ORDER BY fetched_at, id",
                                       [ids]))
        for row in rows:
            row["headers"] = [tuple(pair) for pair in json.loads(row["headers"])]
            row["payload"] = _stored(row.pop("body"), row["stored_as"])
        return rows

    def unrecorded_snapshots_for(self, org_id: str, chunk: int = 50) -> Iterator[dict[str, Any]]:
        """Snapshots of an organisation's evidence kept before raw records were (no `record_id`),
        with their decoded bodies, oldest first, a few at a time."""
        keys = self.con.execute(
            "SELECT s.item_id, s.hash FROM snapshots s WHERE s.record_id IS NULL AND s.item_id IN "
            "(SELECT item_id FROM attributions WHERE org_id = ?) ORDER BY s.fetched_at, s.item_id, s.hash",
            [org_id]).fetchall()
        for start in range(0, len(keys), chunk):
            part = keys[start:start + chunk]
            rows = _dicts(self.con.execute(
                "SELECT item_id, hash, url, fetched_at, status, content_type, headers, body FROM snapshots "
                "WHERE item_id IN (SELECT unnest(?)) AND record_id IS NULL ORDER BY fetched_at, item_id, hash",
                [[k[0] for k in part]]))
            wanted = set(part)
            for row in rows:
                if (row["item_id"], row["hash"]) in wanted:
                    row["body"] = zlib.decompress(row["body"])
                    yield row

    def items_for(self, org_id: str, *, snapshots: bool = True) -> list[dict[str, Any]]:
        """Every item of an organisation with its newest snapshot's hash and capture time (what a
        dossier cites; scoring, which needs only the items, asks for `snapshots=False`)."""
        if not snapshots:
            rows = self.con.execute("SELECT i.* FROM attributions a JOIN items i ON i.id = a.item_id WHERE a.org_id = ? "
                                    "ORDER BY coalesce(i.published_at, i.first_seen) DESC, i.id", [org_id])
        else:
            rows = self.con.execute("""
                SELECT i.*, s.hash AS snapshot_hash, s.fetched_at AS snapshot_at, s.record_id AS snapshot_record_id
                FROM attributions a JOIN items i ON i.id = a.item_id LEFT JOIN (
                    SELECT item_id, hash, fetched_at, record_id,
                           row_number() OVER (PARTITION BY item_id ORDER BY fetched_at DESC) AS rn
                    FROM snapshots WHERE item_id IN (SELECT item_id FROM attributions WHERE org_id = ?)
                    ) s ON s.item_id = i.id AND s.rn = 1
                WHERE a.org_id = ? ORDER BY coalesce(i.published_at, i.first_seen) DESC, i.id""", [org_id, org_id])
        records = _dicts(rows)
        for r in records:
            r["org_id"] = org_id  # the organisation it is evidence for here (items.org_id: who reached it first)
        return records

    def item_count(self, org_id: str) -> int:
        return self.con.execute("SELECT count(*) FROM attributions WHERE org_id = ?", [org_id]).fetchone()[0]

    def counts(self) -> dict[str, int]:
        tables = ("organisations", "sources", "items", "attributions", "snapshots", "records", "runs", "run_errors",
                  "classifications", "score_runs", "overrides")
        return {t: self.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    # -- runs ----------------------------------------------------------------------------------
    def start_run(self, command: str, now: dt.datetime) -> str:
        run_id = uuid.uuid4().hex[:12]
        self.con.execute("INSERT INTO runs VALUES (?, ?, ?, NULL, 'running', NULL)", [run_id, command, _naive(now)])
        return run_id

    def interrupt_stale_runs(self, now: dt.datetime) -> int:
        """Runs left 'running' by a process that died (call only while holding the harvest lock)."""
        return len(self.con.execute("UPDATE runs SET status = 'interrupted', finished_at = coalesce(finished_at, ?) "
                                    "WHERE status = 'running' RETURNING id", [_naive(now)]).fetchall())

    def finish_run(self, run_id: str, status: str, counts: dict, now: dt.datetime) -> None:
        self.con.execute("UPDATE runs SET finished_at = ?, status = ?, counts = ? WHERE id = ?",
                         [_naive(now), status, json.dumps(counts), run_id])

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The latest runs, newest first, each with its sources' counts and its errors."""
        runs = _dicts(self.con.execute("SELECT * FROM runs ORDER BY started_at DESC, id LIMIT ?", [limit]))
        for run in runs:
            run["counts"] = json.loads(run["counts"]) if run["counts"] else {}
            run["sources"] = _dicts(self.con.execute(
                "SELECT source_id, org_id, status, new, changed, unchanged, gone, failed, refused, seconds FROM run_sources "
                "WHERE run_id = ? ORDER BY source_id", [run["id"]]))
            run["errors"] = _dicts(self.con.execute(
                "SELECT org_id, source_id, url, error, message, occurred_at FROM run_errors WHERE run_id = ? "
                "ORDER BY occurred_at", [run["id"]]))
        return runs

    def record_source_run(self, run_id: str, spec: SourceSpec, counts: dict[str, int], status: str,
                          seconds: float) -> None:
        self.con.execute(
            "INSERT INTO run_sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # once a source a run (an upsert: 3x the cost)
            [run_id, spec.id, spec.org_id, counts.get("new", 0), counts.get("changed", 0),
             counts.get("unchanged", 0), counts.get("gone", 0), counts.get("failed", 0), status, seconds,
             counts.get("refused", 0)])

    def record_error(self, run_id: str, *, org_id: str | None, source_id: str | None, url: str | None,
                     error: Exception, now: dt.datetime) -> None:
        self.con.execute("INSERT INTO run_errors VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [run_id, org_id, source_id, strip_controls(url), type(error).__name__,
                          strip_controls(str(error).splitlines()[0][:1000]) if str(error) else type(error).__name__,
                          _naive(now)])

    def source_status(self, org_id: str) -> list[dict[str, Any]]:
        return _dicts(self.con.execute(
            "SELECT s.id, s.platform, s.locator, s.last_attempt, s.last_success, s.last_error, s.last_error_at, "
            "s.items_total, (SELECT r.refused FROM run_sources r JOIN runs u ON u.id = r.run_id "
            "  WHERE r.source_id = s.id ORDER BY u.started_at DESC LIMIT 1) AS refused, "
            "(SELECT r.status FROM run_sources r JOIN runs u ON u.id = r.run_id "
            "  WHERE r.source_id = s.id ORDER BY u.started_at DESC LIMIT 1) AS last_status "
            "FROM sources s WHERE s.org_id = ? AND s.retired_at IS NULL ORDER BY s.platform, s.locator", [org_id]))

    def last_harvest(self, org_id: str) -> dt.datetime | None:
        row = self.con.execute("SELECT max(last_success) FROM sources WHERE org_id = ? AND retired_at IS NULL",
                               [org_id]).fetchone()
        return _aware(row[0]) if row else None

    # -- classifications and scores ------------------------------------------------------------
    def classifications(self, items: list[dict[str, Any]], rubric_version: str) -> dict[str, Classification]:
        """Stored classifications of these items' current text under this rubric version."""
        if not items:
            return {}
        wanted = {(i["id"], i["content_hash"]) for i in items}
        rows = self.con.execute(
            "SELECT item_id, content_hash, result FROM classifications WHERE rubric_version = ? "
            "AND item_id IN (SELECT unnest(?))", [rubric_version, [i["id"] for i in items]]).fetchall()
        return {r[0]: blobs.load("classification", r[2]) for r in rows if (r[0], r[1]) in wanted}

    def unclassified(self, org_ids: list[str], rubric_version: str) -> int:
        """How many of these organisations' items have no classification of their current text
        under this rubric version (what a scoring will classify, repeats counted)."""
        return self.con.execute(
            "SELECT count(DISTINCT i.id) FROM attributions a JOIN items i ON i.id = a.item_id "
            "WHERE a.org_id IN (SELECT unnest(?)) AND NOT EXISTS (SELECT 1 FROM classifications c WHERE "
            "c.item_id = i.id AND c.content_hash = i.content_hash AND c.rubric_version = ?)",
            [org_ids, rubric_version]).fetchone()[0]

    def save_classifications(self, rows: list[tuple[str, str, Classification]], now: dt.datetime) -> None:
        if not rows:
            return
        with self._tx():
            self._insert_many("classifications", 5, [
                (item_id, content_hash, c.rubric_version, blobs.dump("classification", c), _naive(now))
                for item_id, content_hash, c in rows])

    def _insert_many(self, table: str, width: int, rows: list[tuple], chunk: int = INSERT_CHUNK,
                     known_new: bool = False) -> None:
        """Insert rows in one statement, bound column by column: one list parameter per column and
        `unnest` to zip them back into rows. DuckDB binds a handful of lists far faster than
        thousands of scalars (or than `executemany`, which pays per row); bytes travel as base64,
        which it binds several times faster than a list of blobs. A row whose key is taken is
        skipped, unless the caller has made sure none is (`known_new`): the check costs DuckDB
        nearly as much as the insert."""
        for start in range(chunk, len(rows), chunk):  # long batches in parts: bounded memory
            self._insert_many(table, width, rows[start:start + chunk], chunk, known_new)
        rows = rows[:chunk]
        if not rows:
            return
        columns, picks = [], []
        for n, column in enumerate(zip(*rows), start=1):
            if any(isinstance(value, bytes) for value in column):
                column = [None if v is None else base64.b64encode(v).decode("ascii") for v in column]
                picks.append(f"from_base64(unnest(${n}))")
            else:
                picks.append(f"unnest(${n})")
            columns.append(list(column))
        assert len(columns) == width, (table, len(columns), width)
        skip = "" if known_new else " ON CONFLICT DO NOTHING"
        self.con.execute(f"INSERT INTO {table} SELECT {', '.join(picks)}{skip}", columns)

    def save_score(self, score: OrgScore, changes: list[str]) -> str:
        """Keep a scoring and what changed since the one before it (the dossier shows both)."""
        score_run_id = uuid.uuid4().hex[:12]
        with self._tx():
            self.con.execute("INSERT INTO score_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [score_run_id, score.org_id, _naive(score.scored_at), score.rubric_version,
                              score.award.level, blobs.dump("score", score), json.dumps(changes)])
            self.con.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [[score_run_id, score.org_id, c.criterion, c.level, c.score, score.rubric_version,
                                   _naive(score.scored_at)] for c in score.criteria])
        return score_run_id

    def latest_score(self, org_id: str) -> OrgScore | None:
        found = self.latest_score_and_changes(org_id)
        return found[0] if found else None

    def latest_score_and_changes(self, org_id: str) -> tuple[OrgScore, list[str]] | None:
        row = self.con.execute("SELECT result, changes FROM score_runs WHERE org_id = ? "
                               "ORDER BY scored_at DESC, rowid DESC LIMIT 1", [org_id]).fetchone()
        if not row:
            return None
        return blobs.load("score", row[0]), json.loads(row[1]) if row[1] else []

    # -- overrides -----------------------------------------------------------------------------
    def add_override(self, org_id: str, o: Override) -> str:
        override_id = o.id or uuid.uuid4().hex[:12]
        machine = (json.dumps({"scorer": o.machine_scorer, "scores": dict(o.machine), "content_hash": o.judged_text})
                   if o.machine or o.judged_text else None)
        self.con.execute("INSERT INTO overrides VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [override_id, org_id, o.item_id, o.action, o.criterion, o.note, o.by, _naive(o.at), machine])
        return override_id

    def overrides_for(self, org_id: str) -> list[Override]:
        rows = self.con.execute("SELECT id, item_id, action, criterion, note, decided_by, decided_at, machine "
                                "FROM overrides WHERE org_id = ? ORDER BY decided_at, id", [org_id]).fetchall()
        out = []
        for r in rows:
            machine = json.loads(r[7]) if r[7] else {}
            out.append(Override(id=r[0], item_id=r[1], action=r[2], criterion=r[3], note=r[4], by=r[5], at=_aware(r[6]),
                                machine=tuple(machine.get("scores", {}).items()), machine_scorer=machine.get("scorer", ""),
                                judged_text=machine.get("content_hash", "")))
        return out

    def as_judged(self, item_ids: list[str], scorer_key: str) -> dict[str, tuple[str, dict[str, float]]]:
        """Each item's current content hash and its stored score per criterion for that text under
        `scorer_key` (none if it has not been scored so): what a validator deciding now has seen."""
        rows = self.con.execute(
            "SELECT i.id, i.content_hash, c.result FROM items i LEFT JOIN classifications c ON c.item_id = i.id "
            "AND c.content_hash = i.content_hash AND c.rubric_version = ? WHERE i.id IN (SELECT unnest(?))",
            [scorer_key, item_ids]).fetchall()
        return {r[0]: (r[1], {name: res.score for name, res in blobs.load("classification", r[2]).criteria.items()}
                             if r[2] else {}) for r in rows}

    def items_named(self, org_id: str, item_ref: str) -> list[str]:
        """The ids of `org_id`'s items named by an item id, or else by a URL or native id (a page and
        the feed entry linking to it share a URL: a decision on the URL is a decision on both)."""
        join = "SELECT i.id FROM items i JOIN attributions a ON a.item_id = i.id AND a.org_id = ? "
        rows = self.con.execute(join + "WHERE i.id = ?", [org_id, item_ref]).fetchall()
        if not rows:
            rows = self.con.execute(join + "WHERE i.url = ? OR i.native_id = ? ORDER BY i.id",
                                    [org_id, item_ref, item_ref]).fetchall()
        return [r[0] for r in rows]

    def attributions(self, item_id: str) -> list[tuple[str, str]]:
        """(organisation, how) for each organisation an item is evidence for."""
        return [(r[0], r[1]) for r in self.con.execute(
            "SELECT org_id, how FROM attributions WHERE item_id = ? ORDER BY first_at, org_id", [item_id]).fetchall()]


class _Transaction:
    """A transaction; nested inside another, it joins the outer one."""

    def __init__(self, store: "Store"):
        self.store = store

    def __enter__(self):
        depth = getattr(self.store, "_depth", 0)
        if depth == 0:
            self.store.con.execute("BEGIN")
        self.store._depth = depth + 1

    def __exit__(self, exc_type, exc, tb):
        self.store._depth -= 1
        if self.store._depth == 0:
            self.store.con.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _in_record(snapshot: Snapshot) -> bool:
    """Whether a snapshot's body is its raw record's payload, byte for byte (kept there only)."""
    record = snapshot.record
    return (record is not None and record.redacted is None and len(record.payload) == len(snapshot.body)
            and (record.payload is snapshot.body or record.payload == snapshot.body))


def _stored(body: bytes, stored_as: str) -> bytes:
    """A raw record's payload from its stored form."""
    return zlib.decompress(body) if stored_as == "zlib" else body


def _dicts(cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor.fetchall():
        record = dict(zip(names, row))
        for key, value in record.items():
            if isinstance(value, dt.datetime):
                record[key] = _aware(value)
        out.append(record)
    return out

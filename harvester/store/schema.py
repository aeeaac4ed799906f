"""The numbered migrations. Each runs in one transaction with the row that records it; the
schema's version is their count, and a database newer than this code is refused."""

MIGRATIONS: list[tuple[str, str]] = [
    ("initial schema", """
    CREATE TABLE organisations (
        id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, kind VARCHAR NOT NULL, registered DATE,
        claimed_step INTEGER, website VARCHAR, synced_at TIMESTAMP, active BOOLEAN DEFAULT TRUE);
    CREATE TABLE sources (
        id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, platform VARCHAR NOT NULL,
        locator VARCHAR NOT NULL, cursor JSON, last_attempt TIMESTAMP, last_success TIMESTAMP,
        last_error VARCHAR, last_error_at TIMESTAMP, items_total INTEGER DEFAULT 0);
    CREATE TABLE items (
        id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, source_id VARCHAR NOT NULL,
        platform VARCHAR NOT NULL, kind VARCHAR NOT NULL, native_id VARCHAR NOT NULL, url VARCHAR,
        author VARCHAR, title VARCHAR, text VARCHAR, published_at TIMESTAMP,
        first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL, changed_at TIMESTAMP,
        content_hash VARCHAR NOT NULL, tags_scheme BOOLEAN NOT NULL, gone_at TIMESTAMP,
        etag VARCHAR, last_modified VARCHAR);
    CREATE INDEX items_org ON items (org_id);
    CREATE TABLE snapshots (
        item_id VARCHAR NOT NULL, hash VARCHAR NOT NULL, url VARCHAR NOT NULL,
        fetched_at TIMESTAMP NOT NULL, status INTEGER, content_type VARCHAR, headers JSON,
        size INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (item_id, hash));
    CREATE TABLE runs (
        id VARCHAR PRIMARY KEY, command VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP, status VARCHAR NOT NULL, counts JSON);
    CREATE TABLE run_sources (
        run_id VARCHAR NOT NULL, source_id VARCHAR NOT NULL, org_id VARCHAR NOT NULL,
        new INTEGER, changed INTEGER, unchanged INTEGER, gone INTEGER, failed INTEGER,
        status VARCHAR NOT NULL, seconds DOUBLE, PRIMARY KEY (run_id, source_id));
    CREATE TABLE run_errors (
        run_id VARCHAR NOT NULL, org_id VARCHAR, source_id VARCHAR, url VARCHAR,
        error VARCHAR NOT NULL, message VARCHAR NOT NULL, occurred_at TIMESTAMP NOT NULL);
    CREATE TABLE classifications (
        item_id VARCHAR NOT NULL, content_hash VARCHAR NOT NULL, rubric_version VARCHAR NOT NULL,
        result JSON NOT NULL, classified_at TIMESTAMP NOT NULL,
        PRIMARY KEY (item_id, content_hash, rubric_version));
    CREATE TABLE score_runs (
        id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, scored_at TIMESTAMP NOT NULL,
        rubric_version VARCHAR NOT NULL, award VARCHAR, result JSON NOT NULL);
    CREATE TABLE scores (
        score_run_id VARCHAR NOT NULL, org_id VARCHAR NOT NULL, criterion VARCHAR NOT NULL,
        level VARCHAR NOT NULL, score DOUBLE NOT NULL, rubric_version VARCHAR NOT NULL,
        scored_at TIMESTAMP NOT NULL, PRIMARY KEY (score_run_id, criterion));
    CREATE TABLE overrides (
        id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
        action VARCHAR NOT NULL, criterion VARCHAR, note VARCHAR NOT NULL, decided_by VARCHAR NOT NULL,
        decided_at TIMESTAMP NOT NULL);
    """),
    ("retired sources; what changed with each score", """
    ALTER TABLE sources ADD COLUMN retired_at TIMESTAMP;
    ALTER TABLE score_runs ADD COLUMN changes JSON;
    """),
    ("evidence belongs to every organisation that reached it", """
    CREATE TABLE attributions (
        item_id VARCHAR NOT NULL, org_id VARCHAR NOT NULL, how VARCHAR NOT NULL, source_id VARCHAR,
        first_at TIMESTAMP NOT NULL, PRIMARY KEY (item_id, org_id));
    INSERT INTO attributions SELECT id, org_id, 'own source', source_id, first_seen FROM items;
    CREATE INDEX attributions_org ON attributions (org_id);
    """),
    ("refusals counted per source and run", """
    ALTER TABLE run_sources ADD COLUMN refused INTEGER DEFAULT 0;
    """),
    ("the scheme's own sources: authors' platform ids and the handles that attribute their posts", """
    ALTER TABLE items ADD COLUMN author_id VARCHAR;
    CREATE TABLE handles (
        platform VARCHAR NOT NULL, handle VARCHAR NOT NULL, user_id VARCHAR, org_id VARCHAR NOT NULL,
        how VARCHAR NOT NULL, linked_at TIMESTAMP NOT NULL, verified_by VARCHAR,
        PRIMARY KEY (platform, handle));
    """),
    # A raw record is stored once however many snapshots point at it. Its body is zlib-compressed
    # unless the server had already compressed it (stored_as 'identity'); a snapshot whose body is
    # the record's payload byte for byte (a page served uncompressed) keeps no copy of its own
    # (body NULL): whatever deletes a record must first copy such a body back to its snapshot.
    ("raw records: every response kept as received, snapshots pointing at theirs", """
    CREATE TABLE records (
        id VARCHAR PRIMARY KEY, url VARCHAR NOT NULL, fetched_at TIMESTAMP NOT NULL, status INTEGER NOT NULL,
        reason VARCHAR, http_version VARCHAR, headers JSON NOT NULL, payload_sha256 VARCHAR NOT NULL,
        size INTEGER NOT NULL, stored_as VARCHAR NOT NULL, body BLOB NOT NULL, redacted VARCHAR,
        org_id VARCHAR, source_id VARCHAR);
    ALTER TABLE snapshots ADD COLUMN record_id VARCHAR;
    ALTER TABLE snapshots ALTER COLUMN body DROP NOT NULL;
    """),
    # What the machine had given the item when the validator decided (scorer key and a score per
    # criterion): the scorer's report card compares each decision with what the validator saw.
    ("validators' decisions keep the machine's scores they overruled or confirmed", """
    ALTER TABLE overrides ADD COLUMN machine JSON;
    """),
]
SCHEMA_VERSION = len(MIGRATIONS)

"""`ccqm export ORG --warc FILE`: an organisation's raw records as a standard WARC file (WARC/1.1,
written with warcio), so any evidence cited in its dossier replays in archive tools.

It only reads the store (opened read-only). The file holds, oldest capture first:
  - one `warcinfo` record saying what made it and for which organisation;
  - a `response` record for each raw record of the organisation (those its evidence's snapshots
    point at, and those fetched for its own sources): the status line and every header as
    received, then the body exactly as it came off the wire (still gzip when the server sent
    gzip). `WARC-Target-URI` is the URL fetched, `WARC-Date` the capture time and
    `WARC-Payload-Digest` the SHA-256 stored with the record, so a citation naming URL, capture
    time and SHA-256 finds its record; the `WARC-Record-ID` is made from the record's id, the same
    in every export;
  - a `resource` record for each snapshot kept before ccqm kept raw records (databases from before
    schema 6): its body as stored (decoded), with the snapshot's own SHA-256 as payload digest.
One thing differs from the wire on purpose: the body is kept with its transfer coding (chunked)
undone, so a `Transfer-Encoding` header is written as `X-Crawler-Transfer-Encoding`, as Common
Crawl does, and readers do not try to de-chunk it again. A record that had a credential blanked
out (an API echoing its access token) carries a `WARC-Ccqm-Redacted` header saying so.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from io import BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from harvester.config.settings import Settings
from harvester.errors import UsageError
from harvester.items import sha256, utcnow
from harvester.store.db import open_store


@dataclass(frozen=True)
class WarcExport:
    path: Path
    responses: int  # raw records, as received
    resources: int  # snapshots from before raw records were kept

    @property
    def records(self) -> int:
        return self.responses + self.resources


class _Writer(WARCWriter):
    """warcio's writer with SHA-256 block digests, like the payload digests we give it."""

    @staticmethod
    def _create_digester():
        return Digester("sha256")


class _AsReceived(StatusAndHeaders):
    """HTTP headers written back as they were received (the client keeps their bytes as ISO-8859-1
    text): warcio would %-encode a non-ASCII value."""

    def compute_headers_buffer(self, header_filter=None):
        text = self.to_str()
        try:
            self.headers_buff = text.encode("latin-1") + b"\r\n"
        except UnicodeEncodeError:  # not from the wire (a record made by hand): UTF-8 says it best
            self.headers_buff = text.encode("utf-8") + b"\r\n"


def warc_digest(hex_sha256: str) -> str:
    """A SHA-256 as WARC digests are written: `sha256:` and base32."""
    return "sha256:" + base64.b32encode(bytes.fromhex(hex_sha256)).decode("ascii")


def warc_record_id(key: str) -> str:
    """A WARC-Record-ID the same in every export: a raw record's id (32 hex digits) as a UUID, or a
    UUID made from any other key (a snapshot's item id and hash)."""
    is_id = len(key) == 32 and all(c in "0123456789abcdef" for c in key)
    return f"<urn:uuid:{uuid.UUID(hex=key if is_id else sha256(key)[:32])}>"


def _date(when: dt.datetime) -> str:
    when = when.astimezone(dt.timezone.utc).replace(tzinfo=None) if when.tzinfo else when
    return datetime_to_iso_date(when, use_micros=True)


def _ccqm_version() -> str:
    try:
        return version("ccqm")
    except PackageNotFoundError:  # run from a source tree
        return "unknown"


def export_warc(settings: Settings, org_id: str, path: str | Path) -> WarcExport:
    """Write `org_id`'s raw records to `path` as a WARC (gzipped record by record when the name ends
    in `.gz`); the file appears whole or not at all. Returns what was written."""
    settings.organisation(org_id)  # an unknown organisation is a usage error naming the registry
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    responses = resources = 0
    try:
        with open_store(settings.db_path, read_only=True) as store, partial.open("wb") as out:
            writer = _Writer(out, gzip=path.name.endswith(".gz"), warc_version="1.1")
            writer.write_record(writer.create_warcinfo_record(path.name, {
                "software": f"ccqm {_ccqm_version()} (warcio)",
                "format": "WARC File Format 1.1",
                "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                "description": f"Raw records of the evidence of organisation {org_id}, as ccqm received them",
                "isPartOf": org_id,
                "created": _date(utcnow()),
            }))
            for record in store.raw_records_for(org_id):
                writer.write_record(_response(writer, record))
                responses += 1
            for snapshot in store.unrecorded_snapshots_for(org_id):
                writer.write_record(_resource(writer, snapshot))
                resources += 1
        partial.replace(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the WARC ({exc.strerror or exc})") from None
    finally:
        partial.unlink(missing_ok=True)
    return WarcExport(path=path, responses=responses, resources=resources)


def _response(writer: WARCWriter, record: dict):
    headers = [("X-Crawler-Transfer-Encoding", value) if name.lower() == "transfer-encoding" else (name, value)
               for name, value in record["headers"]]
    reason = record["reason"] or ""
    http = _AsReceived(f"{record['status']} {reason}".rstrip(), headers, protocol=record["http_version"] or "HTTP/1.1")
    warc_headers = {"WARC-Record-ID": warc_record_id(record["id"]), "WARC-Date": _date(record["fetched_at"]),
                    "WARC-Payload-Digest": warc_digest(record["payload_sha256"])}
    if record["redacted"]:
        warc_headers["WARC-Ccqm-Redacted"] = record["redacted"]
    payload = record["payload"]
    return writer.create_warc_record(record["url"], "response", payload=BytesIO(payload), length=len(payload),
                                     http_headers=http, warc_headers_dict=warc_headers)


def _resource(writer: WARCWriter, snapshot: dict):
    body = snapshot["body"]
    warc_headers = {"WARC-Record-ID": warc_record_id(f"{snapshot['item_id']}:{snapshot['hash']}"),
                    "WARC-Date": _date(snapshot["fetched_at"]), "WARC-Payload-Digest": warc_digest(snapshot["hash"])}
    return writer.create_warc_record(snapshot["url"], "resource", payload=BytesIO(body), length=len(body),
                                     warc_content_type=snapshot["content_type"] or "application/octet-stream",
                                     warc_headers_dict=warc_headers)

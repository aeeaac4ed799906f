"""How fast the store takes a harvest: items saved per second in the harvest's batches (target at
least 2,000/s), and the cost of marking 50 pages seen as the database grows from 2,500 to 50,000
items (target: flat). Real text: development-set excerpts as page bodies, with snapshots and the
raw records they point at (pages served uncompressed, as most are).
Ends with one line `store: ITEMS_PER_S seen_2500=MS seen_50000=MS`.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harvester.app.harvest import _Batch, _save_group  # noqa: E402
from harvester.app.train import load_set  # noqa: E402
from harvester.config.registry import Organisation, SourceSpec  # noqa: E402
from harvester.config.settings import HarvestSettings  # noqa: E402
from harvester.items import Item, RawRecord, Seen, Snapshot  # noqa: E402
from harvester.store.db import open_store  # noqa: E402

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
BATCH = HarvestSettings().batch_items  # the harvest's own batch size


def items(texts: list[str], start: int, count: int, spec: SourceSpec) -> list[Item]:
    out = []
    for n in range(start, start + count):
        url = f"https://school.example.org/news/{n}/"
        body = texts[n % len(texts)]
        html = f"<html><body><p>{body}</p></body></html>".encode()
        record = RawRecord(url=url, fetched_at=NOW, status=200, reason="OK", http_version="HTTP/1.1",
                           headers=(("Content-Type", "text/html; charset=utf-8"), ("ETag", f'"{n}"'),
                                    ("Content-Length", str(len(html)))), payload=html)
        out.append(Item(org_id=spec.org_id, source_id=spec.id, platform="website", kind="page", native_id=url,
                        url=url, title=f"News {n}", text=body, published=NOW, etag=f'"{n}"',
                        snapshot=Snapshot(url=url, fetched_at=NOW, status=200, content_type="text/html",
                                          body=html, record=record)))
    return out


def save(db: Path, spec: SourceSpec, batch: list) -> None:
    with open_store(db, lean=True) as store:  # the harvest's own kind of session and transaction
        if not _save_group(store, [_Batch(spec, batch, "bench")]):
            raise SystemExit("a batch failed to save")


def main() -> None:
    texts = [e.text for e in load_set(ROOT / "fixtures" / "labelled")]
    org = Organisation(id="school", name="School", kind="school", registered=NOW.date(), step=3,
                       website="https://school.example.org/")
    spec = org.sources[0]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "store.duckdb"
        with open_store(db) as store:
            store.sync_organisations((org,), NOW)
        stored, seen_ms = 0, {}
        started = time.perf_counter()
        for target in (2_500, 50_000):
            while stored < target:
                save(db, spec, items(texts, stored, BATCH, spec))
                stored += BATCH
            if target == 2_500:
                rate = stored / (time.perf_counter() - started)
                print(f"saved {stored} items in batches of {BATCH}: {rate:.0f} items/s")
            seen = [Seen("website", f"https://school.example.org/news/{n}/") for n in range(0, 5000, 100)]
            t = time.perf_counter()
            save(db, spec, seen)
            seen_ms[target] = (time.perf_counter() - t) * 1000
            print(f"marking 50 pages seen at {stored} items: {seen_ms[target]:.0f} ms")
    print(f"store: {rate:.0f} seen_2500={seen_ms[2_500]:.0f} seen_50000={seen_ms[50_000]:.0f}")


if __name__ == "__main__":
    main()

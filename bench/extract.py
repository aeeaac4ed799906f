"""Extraction speed: our path (`harvester.web.extract.parse_html`: text, title, date and links)
against bare single-process `trafilatura.extract` on the same pages, in the same run: ours in one
process, and ours as the harvest runs it, in worker processes on every core (`web.pool`) fed by
threads.

Runs over the real pages of `../shared/corpus/web/` (skips, saying so, when it is absent), each
page once to warm up and then `--rounds` times. Ends with one line
`extract: RATIO single=R ours_pages_per_s=N trafilatura_pages_per_s=N cores=N` where RATIO is ours
on every core / bare, and single is ours in one process / bare (above 1 is faster than bare).

    python bench/extract.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from harvester.web.extract import decode, parse_html  # noqa: E402
from harvester.web.pool import ExtractPool  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "web"


def timed(label: str, work, bodies: list[tuple[str, bytes]], rounds: int) -> float:
    for url, body in bodies:  # warm up: caches, lazy imports
        work(url, body)
    started = time.perf_counter()
    for _ in range(rounds):
        for url, body in bodies:
            work(url, body)
    rate = rounds * len(bodies) / (time.perf_counter() - started)
    print(f"{label}: {rate:.1f} pages/s")
    return rate


def bare(url: str, body: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trafilatura.extract(decode(body, None), url=url)


def ours(url: str, body: bytes) -> None:
    parse_html(body, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"extract: skipped ({CORPUS} not present: ../shared/ sits beside the project in development and CI)")
        return
    bodies = [(f"https://example.org/{p.stem}/", p.read_bytes()) for p in sorted(CORPUS.glob("*.htm*"))]
    print(f"{len(bodies)} real pages, {sum(len(b) for _, b in bodies) / 1e6:.1f} MB")
    theirs = timed("bare trafilatura.extract, one process", bare, bodies, args.rounds)
    mine = timed("ccqm parse_html (text, title, date, links), one process", ours, bodies, args.rounds)
    cores = os.cpu_count() or 1
    with ExtractPool(cores) as pool, ThreadPoolExecutor(4 * cores) as threads:
        def read_all() -> None:  # the pages in flight together, as a harvest's threads send them
            list(threads.map(lambda page: pool.parse_html(page[1], page[0]), bodies))

        read_all()  # warm up: the workers start and load their parsers
        started = time.perf_counter()
        for _ in range(args.rounds):
            read_all()
        everywhere = args.rounds * len(bodies) / (time.perf_counter() - started)
    print(f"ccqm parse_html in {cores} worker processes: {everywhere:.1f} pages/s")
    print(f"extract: {everywhere / theirs:.2f} single={mine / theirs:.2f} ours_pages_per_s={everywhere:.1f} "
          f"trafilatura_pages_per_s={theirs:.1f} cores={cores}")


if __name__ == "__main__":
    main()

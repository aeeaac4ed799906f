"""How fast `ccqm crawl` harvests many small sites, and at what peak memory, against Scrapy 2.13.4
with trafilatura on the same loopback world in the same run.

The world (bench/crawl_world.py, in its own process, so its CPU is not charged to either crawler)
serves N sites of M pages of real development-set text, each site on its own loopback address,
every answer 20 ms late. `ccqm crawl` runs on it three times on one database, with the shipped
settings except no delay between requests and a page budget and depth that reach every page:
a first crawl, an unchanged re-crawl (the world restarted as it was: every page can answer 304)
and a re-crawl after a fifth of each site's pages changed. Each run is timed from process start
to exit, and the memory of its whole process tree (RSS and PSS summed over the process and its
descendants) is read from /proc every 50 ms. With --against-scrapy, a plain Scrapy spider
(bench/scrapy_spider.py, in a venv of its own, bench/.venv-scrapy, made on first use) crawls the
same world once and is measured the same way; it sends no conditional requests, so a re-crawl
would cost it a first crawl again.

Pages are what each stored: ccqm's items, the Scrapy feed's lines. Ends with one line
`crawl: pages_ratio=R rss_ratio=R unchanged=R changed20=R ccqm_pps=X scrapy_pps=Y sites=N pages=M`:
pages_ratio and rss_ratio are ccqm over Scrapy (pages a second; peak RSS), unchanged and changed20
the re-crawls' wall times over the first crawl's.

    python bench/crawl.py [--sites 50] [--pages 50] [--latency 20] [--against-scrapy] [--concurrency N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from bench.crawl_world import site_address, site_url  # noqa: E402
from harvester.config.settings import HarvestSettings  # noqa: E402

BENCH = ROOT / "bench"
SCRAPY_VENV = BENCH / ".venv-scrapy"
# jusText (under trafilatura) imports lxml.html.clean, which lxml_html_clean now provides
SCRAPY_PACKAGES = ("scrapy==2.13.4", f"trafilatura=={version('trafilatura')}",
                   f"lxml_html_clean=={version('lxml_html_clean')}")
CHANGED = 0.2
SAMPLE_SECONDS = 0.05
MB = 1024 * 1024
TARGET_PAGES = 1000 * 200  # the extrapolation: 1,000 organisations of 200 pages


class World:
    """bench/crawl_world.py running in its own process while the `with` lasts; `served` is its
    tally once it has stopped."""

    def __init__(self, args: argparse.Namespace, changed: float, port: int):
        self.sites = args.sites
        self.command = [sys.executable, str(BENCH / "crawl_world.py"), "--sites", str(args.sites),
                        "--pages", str(args.pages), "--latency", str(args.latency), "--changed", str(changed),
                        "--port", str(port)]
        self.served: dict = {}

    def __enter__(self) -> World:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"crawl: the world did not start ({self.proc.wait()})")
        ready = json.loads(line)
        self.port, self.max_depth, self.page_bytes = ready["port"], ready["max_depth"], ready["page_bytes"]
        return self

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        self.served = json.loads(out)

    def urls(self) -> list[str]:
        return [site_url(k, self.port) for k in range(self.sites)]


@dataclass
class Run:
    """One crawl: wall seconds from start to exit, the peaks of its process tree, pages stored."""

    seconds: float
    rss: int
    pss: int
    pages: int = 0
    notes: list[str] = field(default_factory=list)  # what the crawler itself said
    world: World | None = None

    @property
    def pps(self) -> float:
        return self.pages / self.seconds


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (each thread's children: a pool may fork from any)."""
    tree, queue = [], [pid]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                queue += [int(child) for child in children.read_text().split()]
            except OSError:  # the thread ended meanwhile
                pass
    return tree


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes, summed over the process tree."""
    rss = pss = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/smaps_rollup").read_text().splitlines()
        except OSError:  # the process ended meanwhile
            continue
        kb = {line.split()[0]: int(line.split()[1]) for line in lines[1:]}
        rss, pss = rss + kb.get("Rss:", 0) * 1024, pss + kb.get("Pss:", 0) * 1024
    return rss, pss


class PeakMemory(threading.Thread):
    """Samples a process tree's memory every SAMPLE_SECONDS until stopped; keeps the peaks."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.rss, self.pss, self.done = pid, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            rss, pss = tree_memory(self.pid)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self.done.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self.done.set()
        self.join()


def measured(label: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> Run:
    """Run `command` to its end, its output to `log`; a failure ends the bench, showing the log's tail."""
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        peak = PeakMemory(proc.pid)
        peak.start()
        proc.wait()
        seconds = time.perf_counter() - started
        peak.stop()
    if proc.returncode != 0:
        tail = "\n".join(line[:300] for line in log.read_text().splitlines()[-8:])
        sys.exit(f"crawl: {label} failed ({proc.returncode}):\n{tail}")
    return Run(seconds, peak.rss, peak.pss)


def write_config(folder: Path, world: World, args: argparse.Namespace) -> None:
    """One organisation per site; the shipped settings but for no delay and a budget and depth
    that reach every page (and --concurrency, if given)."""
    folder.mkdir(exist_ok=True)
    (folder / "organisations.toml").write_text("".join(
        f'[[organisation]]\nid = "school-{k}"\nname = "Example School {k}"\nkind = "school"\n'
        f'registered = 2026-01-01\nstep = 3\nwebsite = "{url}"\n\n' for k, url in enumerate(world.urls())),
        encoding="utf-8")
    concurrency = f"concurrency = {args.concurrency}\n" if args.concurrency else ""
    (folder / "settings.toml").write_text(
        f"[http]\nallow_networks = ['127.0.0.0/8']\n[harvest]\ndelay_seconds = 0.0\n"
        f"max_pages_per_site = {args.pages + 10}\nmax_depth = {world.max_depth}\n{concurrency}", encoding="utf-8")
    shutil.copy(ROOT / "config" / "rubric.toml", folder / "rubric.toml")


def ccqm_crawl(world: World, tmp: Path, log: Path, args: argparse.Namespace) -> Run:
    """`ccqm crawl` of every site into tmp/ccqm.duckdb (the same database run after run)."""
    config, db = tmp / "config", tmp / "ccqm.duckdb"
    write_config(config, world, args)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCQM_")}
    command = [sys.executable, "-m", "harvester", "--config", str(config), "--db", str(db), "crawl"]
    run = measured("ccqm crawl", command, log, env)
    with duckdb.connect(str(db), read_only=True) as con:
        run.pages = con.execute("SELECT count(*) FROM items").fetchone()[0]
        errors = con.execute("SELECT url, message FROM run_errors WHERE run_id = "
                             "(SELECT id FROM runs ORDER BY started_at DESC LIMIT 1)").fetchall()
    said = [line.strip() for line in log.read_text().splitlines() if line.startswith(("harvest ", "  "))]
    run.notes.append("ccqm says: " + "; ".join(said[:4]))
    if errors:
        run.notes.append(f"ccqm recorded {len(errors)} errors, e.g. " + "; ".join(f"{u}: {m}" for u, m in errors[:3]))
    return run


def scrapy_python() -> Path:
    """bench/.venv-scrapy's Python with Scrapy and ccqm's own trafilatura, made on first use."""
    python = SCRAPY_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {SCRAPY_VENV.relative_to(ROOT)} ({', '.join(SCRAPY_PACKAGES)})", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(SCRAPY_VENV)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *SCRAPY_PACKAGES],
                          capture_output=True, text=True)  # quick when they are there already
    if done.returncode != 0:
        sys.exit(f"crawl: could not install {', '.join(SCRAPY_PACKAGES)}: {done.stderr.strip()[-800:]}")
    return python


def scrapy_crawl(python: Path, world: World, tmp: Path) -> Run:
    feed = tmp / "scrapy-items.jsonl"
    command = [str(python), str(BENCH / "scrapy_spider.py"), "--depth", str(world.max_depth), "--out", str(feed),
               *world.urls()]
    run = measured("the Scrapy spider", command, tmp / "scrapy.log")
    with feed.open(encoding="utf-8") as lines:
        run.pages = sum(1 for _ in lines)
    return run


def free_port() -> int:
    """A port the worlds can all use (the same one each time: the registry's URLs name it)."""
    with socket.socket() as sock:
        sock.bind((site_address(0), 0))
        return sock.getsockname()[1]


def in_world(args: argparse.Namespace, changed: float, port: int, crawl) -> Run:
    """`crawl(world)` while a world of this generation serves; the run knows the world afterwards."""
    with World(args, changed, port) as world:
        run = crawl(world)
    run.world = world
    return run


def report(label: str, run: Run, first: Run | None = None) -> None:
    """A crawl's figures, a re-crawl's against the first crawl's time, and what the world served."""
    speed = f"{run.seconds / first.seconds:.2f} of the first crawl's time" if first else f"{run.pps:.1f} pages/s"
    print(f"{label}: {run.seconds:.1f} s ({speed}), {run.pages} pages stored; "
          f"peak RSS {run.rss / MB:.0f} MB, PSS {run.pss / MB:.0f} MB")
    served = run.world.served
    statuses = ", ".join(f"{n} x {status}" for status, n in served["status"].items())
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(served["kinds"].items()))
    print(f"  world served {statuses} ({kinds}; {served['conditional']} conditional); "
          f"pages asked for again {served['repeats']}, never asked for {served['missed']}; "
          f"world CPU {served['cpu_seconds']} s")
    if served["repeated"]:
        print(f"  asked for again, e.g. {', '.join(served['repeated'])}")
    for note in run.notes:
        print(f"  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--pages", type=int, default=50, help="pages a site, its home page included")
    parser.add_argument("--latency", type=float, default=20, help="ms the world waits before every answer")
    parser.add_argument("--against-scrapy", action="store_true", help="crawl the same world with Scrapy too")
    parser.add_argument("--concurrency", type=int, help="ccqm's harvest.concurrency [default: the shipped one]")
    args = parser.parse_args()
    spider_python = scrapy_python() if args.against_scrapy else None
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)

        def ccqm(log: str):
            return lambda world: ccqm_crawl(world, tmp, tmp / log, args)

        first = in_world(args, 0.0, port, ccqm("first.log"))
        print(f"world: {args.sites} sites x {args.pages} pages, {first.world.page_bytes / 1000:.1f} kB a page, "
              f"{args.latency:g} ms latency, every page within {first.world.max_depth} links of its home page; "
              f"ccqm: concurrency {args.concurrency or HarvestSettings().concurrency}, no delay")
        report("ccqm first crawl", first)
        unchanged = in_world(args, 0.0, port, ccqm("unchanged.log"))
        report("ccqm unchanged re-crawl", unchanged, first)
        changed = in_world(args, CHANGED, port, ccqm("changed.log"))
        report(f"ccqm re-crawl, {CHANGED:.0%} of pages changed", changed, first)
        scrapy = (in_world(args, 0.0, port, lambda world: scrapy_crawl(spider_python, world, tmp)) if spider_python
                  else None)
        if scrapy:
            report("scrapy first crawl", scrapy)
    if args.sites >= 1000:
        print(f"at {first.pps:.1f} pages/s, 1,000 organisations x 200 pages ({TARGET_PAGES:,} pages) would take "
              f"{TARGET_PAGES / first.pps / 3600:.2f} h")
    ratios = (f"pages_ratio={first.pps / scrapy.pps:.2f} rss_ratio={first.rss / scrapy.rss:.2f}" if scrapy
              else "pages_ratio=n/a rss_ratio=n/a")
    print(f"crawl: {ratios} unchanged={unchanged.seconds / first.seconds:.2f} "
          f"changed20={changed.seconds / first.seconds:.2f} ccqm_pps={first.pps:.1f} "
          f"scrapy_pps={f'{scrapy.pps:.1f}' if scrapy else 'n/a'} sites={args.sites} pages={args.pages}")


if __name__ == "__main__":
    main()

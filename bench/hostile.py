"""A hostile site, shipped defaults (issue 14): done in 120 s or less and 300 MB or less, every
non-public address refused, the good pages stored.

Starts bench/hostile_world.py in its own process on 127.0.0.2: about 20 good pages of real
development-set text, and, linked from the home page and listed in the sitemap ahead of them, a
gzip bomb, endless and 200 MB bodies, a drip, a hang, a 429 storm, 100,000 links, calendar and
sitemap traps, a redirect loop, a 1 MB links-only page and SSRF redirects to 127.0.0.1, localhost,
[::1], 0x7f.1, 2130706433, 10.0.0.1, 169.254.169.254 and more, one of them a sitemap's (see that
file). The settings allow
only 127.0.0.2/32; every other limit is the shipped default. Runs `ccqm -v crawl` in a child
process, killed at --guard seconds, sampling the RSS of its whole process tree every 50 ms; then
reads the database (items, run_sources, run_errors), the crawler's log (its refusals and every
connection it opened) and the site's request log (which trap took the time; whether any
connection reached a private address, where listeners count them). `refused_private` counts the
hostile URLs refused for a non-public address; `trap_items` the items stored that are not good pages
or the home page.
Ends with one line `hostile: SECONDS s PEAK_MB MB good=STORED/TOTAL refused_private=N trap_items=N`
and exits 1 if a target is missed (over 120 s, over 300 MB, a good page missing, a private address
reached or an SSRF redirect not refused).

    python bench/hostile.py [--guard 360] [--host 127.0.0.2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb

from bench.hostile_world import kind_of

TARGET_SECONDS, TARGET_MB = 120.0, 300.0
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- the crawler's memory: its whole process tree ------------------------------------------------
def tree_rss(root: int) -> int:
    """Bytes resident in `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children[ppid].append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(pid, ()))
    return total


class Sampler(threading.Thread):
    """The tree's RSS every `every` seconds: its peak, and a timeline (wall clock, bytes) to say what
    the crawler was doing when it peaked."""

    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.peak_wall = pid, every, 0, 0.0
        self.timeline: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            rss = tree_rss(self.pid)
            now = time.time()
            self.timeline.append((now, rss))
            if rss > self.peak:
                self.peak, self.peak_wall = rss, now
            self.done.wait(self.every)


# -- the site -------------------------------------------------------------------------------------
def start_world(host: str, log: Path) -> tuple[subprocess.Popen, dict]:
    world = subprocess.Popen([sys.executable, str(Path(__file__).with_name("hostile_world.py")), "--host", host,
                              "--log", str(log)], stdout=subprocess.PIPE, text=True)
    line = world.stdout.readline()
    if not line:
        world.wait()
        sys.exit(f"hostile: the hostile site did not start (exit {world.returncode})")
    return world, json.loads(line)


def stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_log(path: Path) -> tuple[dict[int, dict], list[dict]]:
    requests: dict[int, dict] = {}
    forbidden = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["ev"] == "forbidden":
            forbidden.append(rec)
        elif rec["ev"] == "in":
            requests[rec["id"]] = {**rec, "seconds": None, "status": None, "bytes": 0}
        elif rec["id"] in requests:  # "out": how it ended
            requests[rec["id"]].update(status=rec["status"], bytes=rec["bytes"], seconds=rec["seconds"])
    return requests, forbidden


# -- the crawl ------------------------------------------------------------------------------------
def write_config(config: Path, base: str, host: str) -> None:
    config.mkdir()
    (config / "organisations.toml").write_text(
        f'[[organisation]]\nid = "hostile-academy"\nname = "Hostile Academy"\nkind = "school"\n'
        f'registered = 2026-01-01\nstep = 3\nwebsite = "{base}/"\n', encoding="utf-8")
    # Only what points the crawl at the site: every limit stays the shipped default.
    (config / "settings.toml").write_text(f"[http]\nallow_networks = ['{host}/32']\n", encoding="utf-8")
    (config / "rubric.toml").write_text((ROOT / "config" / "rubric.toml").read_text(encoding="utf-8"),
                                        encoding="utf-8")


def crawl(config: Path, db: Path, err: Path, guard: float) -> dict:
    """`ccqm -v crawl` in a child process, its stderr kept with the time each line came."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCQM_")}
    started, wall = time.monotonic(), time.time()
    proc = subprocess.Popen([sys.executable, "-m", "harvester", "-v", "--config", str(config), "--db", str(db),
                             "crawl"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    out: list[str] = []

    def stamp_stderr() -> None:
        with err.open("w", encoding="utf-8") as fh:
            for line in proc.stderr:
                fh.write(f"{time.time() - wall:8.3f} {line}")

    readers = [threading.Thread(target=stamp_stderr, daemon=True),
               threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)]
    for reader in readers:
        reader.start()
    killed = False
    try:
        proc.wait(guard)
    except subprocess.TimeoutExpired:
        killed = True
    except BaseException:  # the bench itself interrupted: the crawl (in its own session) goes too
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    if killed:
        proc.send_signal(signal.SIGTERM)  # it saves what it fetched and records the run interrupted
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    for reader in readers:
        reader.join(5)
    return {"seconds": seconds, "wall": wall, "rc": proc.returncode, "killed": killed, "peak": sampler.peak,
            "peak_at": sampler.peak_wall - wall, "samples": len(sampler.timeline), "timeline": sampler.timeline,
            "out": "".join(out).strip()}


def read_db(db: Path) -> dict:
    if not db.exists():  # the crawl died before it opened its database
        return {"items": [], "sources": [], "errors": [], "runs": []}
    with duckdb.connect(str(db), read_only=True) as con:
        items = [r[0] for r in con.execute("SELECT url FROM items").fetchall()]
        sources = con.execute("SELECT status, new, failed, refused, seconds FROM run_sources").fetchall()
        errors = con.execute("SELECT url, error, message FROM run_errors ORDER BY occurred_at").fetchall()
        runs = con.execute("SELECT status, counts FROM runs").fetchall()
    return {"items": items, "sources": sources, "errors": errors, "runs": runs}


REFUSED = re.compile(r"^INFO ccqm\.harvest: refused (\S+): (.*)$")
CONNECT = re.compile(r"connect_tcp\.started host='?([^' ]+)'? port=(\d+)")


def read_crawler_log(path: Path) -> tuple[dict[str, str], Counter, list[str]]:
    """(refused URL -> reason, host:port the crawler started connections to, tracebacks' last lines)."""
    refused, connects, crashes = {}, Counter(), []
    lines = [line[9:] for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]  # time cut
    for n, line in enumerate(lines):
        m = REFUSED.match(line)
        if m:
            refused[m.group(1)] = m.group(2)
        m = CONNECT.search(line)
        if m:
            connects[f"{m.group(1)}:{m.group(2)}"] += 1
        if line.startswith("Traceback"):
            crashes.append(next((l for l in lines[n + 1:] if l and not l.startswith((" ", "Traceback"))), line))
    return refused, connects, crashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guard", type=float, default=360.0, help="kill the crawl after this many seconds")
    parser.add_argument("--host", default="127.0.0.2", help="the loopback address the hostile site serves on")
    parser.add_argument("--keep", help="copy the database and logs into this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        world_log = tmp / "world.jsonl"
        world, info = start_world(args.host, world_log)
        try:
            write_config(tmp / "config", info["base"], args.host)
            run = crawl(tmp / "config", tmp / "hostile.duckdb", tmp / "crawl.err", args.guard)
        finally:
            stop(world, 10)
        data = read_db(tmp / "hostile.duckdb")
        requests, forbidden = read_log(world_log)
        refused, connects, crashes = read_crawler_log(tmp / "crawl.err")
        err_tail = [l for l in (tmp / "crawl.err").read_text(errors="replace").splitlines() if " DEBUG " not in l][-8:]
        if args.keep:
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for name in ("hostile.duckdb", "world.jsonl", "crawl.err"):
                if (tmp / name).exists():
                    shutil.copy(tmp / name, keep / name)
            (keep / "rss.tsv").write_text("".join(f"{w - run['wall']:.3f}\t{r}\n" for w, r in run["timeline"]))
    report(args, run, info, data, requests, forbidden, refused, connects, crashes, err_tail)


def intervals(requests: dict[int, dict], run: dict) -> list[dict]:
    """Each request the site received, in order, with the time until the crawler's next request
    (waiting for the answer, the politeness delay, then whatever the crawler did with the body) and
    the peak RSS over that time: the whole crawl, cut at each request."""
    arrivals = sorted((r for r in requests.values() if "wall" in r), key=lambda r: r["wall"])
    end = run["wall"] + run["seconds"]
    timeline = run["timeline"]
    out, k = [], 0
    for n, r in enumerate(arrivals):
        until = arrivals[n + 1]["wall"] if n + 1 < len(arrivals) else end
        peak, before = 0, None
        while k < len(timeline) and timeline[k][0] < until:
            if timeline[k][0] >= r["wall"]:
                peak = max(peak, timeline[k][1])
                before = timeline[k][1] if before is None else before
            k += 1
        answered = r["wall"] + r["seconds"] if r.get("seconds") is not None else until
        out.append({**r, "span": until - r["wall"], "after": max(0.0, until - max(answered, r["wall"] + 1.0)),
                    "peak": peak, "rise": peak - (before or peak)})
    return out


def report(args, run, info, data, requests, forbidden, refused, connects, crashes, err_tail) -> None:
    base = info["base"]
    good, hostile = set(info["good"]), set(info["hostile"])
    items = set(data["items"])
    stored_good = good & items

    def item_kind(url: str) -> str:
        if url in good:
            return "good"
        if url == base + "/":
            return "home"
        if not url.startswith(base):
            return "off-site"
        return ("hostile " if url in hostile else "") + kind_of(urlsplit(url).path)

    kinds = Counter(item_kind(u) for u in items)
    trap_items = sum(n for k, n in kinds.items() if k not in ("good", "home"))

    # SSRF: every redirect the site served to a forbidden place must have been refused, none followed
    ssrf_urls = {f"{base}/news/out/{name}/" for name in info["ssrf"]} | set(info["ssrf_sitemaps"])
    served = {base + r["path"] for r in requests.values() if base + r["path"] in ssrf_urls and r.get("status") in
              (301, 302, 303, 307, 308)}
    # pages refused are logged (harvest's "refused URL: why"); a sitemap refused is a BlockedURLError in run_errors
    refused_private = ({u for u, why in refused.items() if "not public" in why}
                       | {url for url, error, message in data["errors"]
                          if error == "BlockedURLError" and "not public" in message})
    not_refused = sorted(u for u in served if u not in refused_private)
    stored_ssrf = sorted(u for u in items if not u.startswith(base))
    site_host = f"{urlsplit(base).hostname}:{urlsplit(base).port}"
    foreign_connects = {h: n for h, n in connects.items() if h != site_host}
    reached = len(forbidden) + sum(foreign_connects.values()) + len(stored_ssrf)
    error_kinds = Counter(e[1] for e in data["errors"])

    # where the time went, by trap: the crawl cut at each request the site received
    spans = intervals(requests, run)
    first = spans[0]["wall"] - run["wall"] if spans else run["seconds"]
    by_kind: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0, 0])
    for r in spans:
        k = by_kind[r.get("kind", "?")]
        k[0] += 1
        k[1] += r["span"]
        k[2] += r["after"]
        k[3] += r.get("bytes") or 0
    seconds, peak_mb = run["seconds"], run["peak"] / 1e6

    print(f"hostile site {base}: {len(good)} good pages, {len(hostile)} hostile links on the home page "
          f"({len(ssrf_urls)} SSRF redirects); forbidden listeners on {', '.join(info['listeners'])}")
    print(f"crawl: exit {run['rc']}{' (killed at the guard)' if run['killed'] else ''} after {seconds:.1f} s; "
          f"peak RSS of its process tree {peak_mb:.0f} MB at {run['peak_at']:.1f} s ({run['samples']} samples)")
    if run["out"]:
        print("  " + run["out"].replace("\n", "\n  "))
    for status, new, failed, refused_n, secs in data["sources"]:
        print(f"  run_sources: {status}, {new} new, {failed} failed, {refused_n} refused, {secs or 0:.1f} s")
    print(f"stored: {len(items)} items: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
    missing = sorted(good - stored_good)
    if missing:
        print(f"  good pages missing ({len(missing)}): " + ", ".join(urlsplit(u).path for u in missing[:8]))
        print(f"  ... of which the site never got a request for: "
              f"{sum(1 for u in missing if not any(base + r['path'] == u for r in requests.values()))}")
    print(f"run_errors: {len(data['errors'])}: " + ", ".join(f"{n} {k}" for k, n in error_kinds.most_common()))
    for url, error, message in data["errors"][:40]:
        print(f"  {error}: {message[:150]}")
    print(f"SSRF: {len(served)}/{len(ssrf_urls)} redirects served, {len(refused_private & ssrf_urls)} refused as "
          f"non-public; not refused: {', '.join(not_refused) or 'none'}")
    reasons = Counter(why.split(" (")[0] for why in refused.values())
    print(f"  refusals logged: {len(refused)}: " + ", ".join(f"{n} {why}" for why, n in reasons.most_common()))
    print(f"  connections the crawler started: {dict(connects)}; forbidden listener hits: {len(forbidden)}; "
          f"stored off-site items: {len(stored_ssrf)}")
    for hit in forbidden[:5]:
        print(f"  REACHED {hit['listener']}: {hit['head'][:80]!r}")
    print(f"time by what the site was asked (the crawl cut at each request; {first:.1f} s before the first):")
    print(f"  {'kind':10} {'reqs':>5} {'seconds':>8} {'crawler busy after':>19} {'sent':>9}")
    for kind, (n, secs, after, sent) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        print(f"  {kind:10} {n:5} {secs:7.1f}s {after:18.1f}s {sent / 1e6:7.1f}MB")
    for r in sorted(spans, key=lambda r: -r["span"])[:8]:
        took = f"answered in {r['seconds']:.1f} s" if r.get("seconds") is not None else "never finished"
        print(f"  slowest: {r['path'][:50]} ({r.get('kind')}) at {r['wall'] - run['wall']:.1f} s: {r['span']:.1f} s "
              f"to the next request ({took}, crawler busy {r['after']:.1f} s after it)")
    for r in sorted(spans, key=lambda r: -r["rise"])[:4]:
        print(f"  memory: +{r['rise'] / 1e6:.0f} MB, to {r['peak'] / 1e6:.0f} MB, while handling {r['path'][:50]} "
              f"({r.get('kind')}, at {r['wall'] - run['wall']:.1f} s)")
    if crashes:
        print(f"crawler tracebacks: {len(crashes)}: {crashes[:3]}")
    if run["rc"] not in (0, None):
        print("crawler stderr (last lines, debug left out): \n  " + "\n  ".join(err_tail))

    failures = []
    if seconds > TARGET_SECONDS:
        failures.append(f"took {seconds:.0f} s (target {TARGET_SECONDS:.0f} s)")
    if peak_mb > TARGET_MB:
        failures.append(f"peak {peak_mb:.0f} MB (target {TARGET_MB:.0f} MB)")
    if missing:
        failures.append(f"{len(missing)} good page(s) not stored")
    if reached:
        failures.append(f"a private address was reached ({len(forbidden)} listener hits, "
                        f"{sum(foreign_connects.values())} connections off the site, {len(stored_ssrf)} stored)")
    if not_refused:
        failures.append(f"{len(not_refused)} SSRF redirect(s) met but not refused as non-public")
    if run["killed"]:
        failures.append(f"killed at the {args.guard:.0f} s guard")
    print("targets: " + ("all met" if not failures else "MISSED: " + "; ".join(failures)))
    print(f"hostile: {seconds:.0f} s {peak_mb:.0f} MB good={len(stored_good)}/{len(good)} "
          f"refused_private={len(refused_private)} trap_items={trap_items}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""Runs that hold up, with real processes: a signal stops a harvest and keeps what it fetched, a
killed harvest's pages are not downloaded in full again, a second harvest is refused, and
`ccqm runs` tells what happened."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.loopback import LoopbackServer, serving
from tests.test_config import run_ccqm

PAGES = 80
HTML = "text/html; charset=utf-8"


SPEED = {"delay": 0.15}


def page_route(n: int, delay: float):
    body = (f"<html><head><title>Equality news {n}</title></head><body><main><h1>Equality news {n}</h1>"
            f"<p>This term our pupils led assembly number {n} on belonging, and our staff trained in "
            f"inclusive teaching, as set out in our equality objectives.</p>"
            + "".join(f'<a href="/news/{k}/">news {k}</a>' for k in range(PAGES)) + "</main></body></html>").encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def route(handler):
        time.sleep(delay and SPEED["delay"])
        if handler.headers.get("If-None-Match") == etag:
            handler.reply(304, {"ETag": etag})
        else:
            handler.reply(200, {"Content-Type": HTML, "ETag": etag}, body)
    return route


@pytest.fixture
def slow_site():
    SPEED["delay"] = 0.15
    with serving(LoopbackServer) as site:
        site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n")
        site.routes["/"] = page_route(-1, 0.05)
        for n in range(PAGES):
            site.routes[f"/news/{n}/"] = page_route(n, 0.15)
        yield site


def config_for(tmp_path, site):
    return write_config(tmp_path / "config", organisations=f"""
[[organisation]]
id = "slow-school"
name = "Slow School"
kind = "school"
registered = 2026-01-01
step = 3
website = "{site.base}/"
""", settings="[http]\nallow_networks = ['127.0.0.1/32']\n[harvest]\ndelay_seconds = 0.0\nmax_pages_per_site = 100\n"
               "max_depth = 2\nbatch_seconds = 0.5\n")


def start_crawl(config, db):
    return subprocess.Popen([sys.executable, "-m", "harvester", "--config", str(config), "--db", str(db), "crawl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("CCQM_")})


def wait_for_pages(site, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len([p for p in site.paths() if p.startswith("/news/")]) < n:
        assert time.monotonic() < deadline, "the crawl did not get going"
        time.sleep(0.05)


def runs_json(config, db) -> list[dict]:
    result = run_ccqm("--config", str(config), "--db", str(db), "runs", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sigterm_stops_the_harvest_keeps_what_it_fetched_and_records_it_interrupted(tmp_path, slow_site):
    config, db = config_for(tmp_path, slow_site), tmp_path / "ccqm.duckdb"
    process = start_crawl(config, db)
    wait_for_pages(slow_site, 12)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert time.monotonic() - started < 5, "the run took more than a few seconds to stop"
    assert process.returncode == 130, err
    assert "stopped" in err and "Traceback" not in err
    run, = runs_json(config, db)
    assert run["status"] == "interrupted" and run["counts"]["new"] >= 10
    assert run["sources"][0]["status"] == "interrupted"


def children(pid: int) -> list[int]:
    """The processes `pid` started (from any of its threads)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").glob("*/children")
            for child in task.read_text().split()]


def test_a_killed_harvest_leaves_a_database_that_opens_and_its_pages_are_not_fetched_again(tmp_path, slow_site):
    config, db = config_for(tmp_path, slow_site), tmp_path / "ccqm.duckdb"
    process = start_crawl(config, db)
    wait_for_pages(slow_site, 15)
    time.sleep(0.6)  # a batch is committed every batch_seconds whatever its size
    readers = children(process.pid)  # the worker processes reading its pages
    assert readers
    process.kill()
    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in readers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() for pid in readers), "the killed harvest left its workers behind"
    fetched_before = {p for p in slow_site.paths() if p.startswith("/news/")}
    slow_site.clear()
    SPEED["delay"] = 0.0  # the rerun need not be slow

    rerun = start_crawl(config, db)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    runs = runs_json(config, db)
    assert [r["status"] for r in runs] == ["ok", "interrupted"]  # the killed run, marked by the next one
    conditional = [r for r in slow_site.received if "if-none-match" in r.headers]
    assert len(conditional) >= 10, "pages stored before the kill were downloaded in full again"
    assert {r.path for r in conditional} - {"/"} <= fetched_before
    assert runs[0]["counts"]["unchanged"] == len(conditional)  # every one answered 304: nothing re-downloaded


def test_a_second_harvest_is_refused_in_one_line(tmp_path, slow_site):
    config, db = config_for(tmp_path, slow_site), tmp_path / "ccqm.duckdb"
    first = start_crawl(config, db)
    try:
        wait_for_pages(slow_site, 3)
        second = start_crawl(config, db)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert err.strip().count("\n") == 0 and "a harvest is already running" in err and f"pid {first.pid}" in err
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)


def test_a_validator_rescoring_in_a_loop_and_the_harvest_both_succeed(tmp_path, slow_site):
    SPEED["delay"] = 0.15  # a crawl long enough for two rescores to overlap it, on a fast machine too
    config, db = config_for(tmp_path, slow_site), tmp_path / "ccqm.duckdb"
    crawl = start_crawl(config, db)
    wait_for_pages(slow_site, 5)
    rescores = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCQM_")}
    while crawl.poll() is None and len(rescores) < 6:
        rescores.append(subprocess.run([sys.executable, "-m", "harvester", "--config", str(config), "--db", str(db),
                                        "rescore", "slow-school", "--out", str(tmp_path / "dossiers")],
                                       capture_output=True, text=True, timeout=120, env=env))
    out, err = crawl.communicate(timeout=120)
    assert crawl.returncode == 0, err
    assert len(rescores) >= 2 and all(r.returncode == 0 for r in rescores), [r.stderr for r in rescores]
    run, = runs_json(config, db)
    assert run["status"] == "ok" and run["counts"]["new"] == PAGES + 1  # every page kept

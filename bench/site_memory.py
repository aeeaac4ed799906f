"""Peak memory of `ccqm crawl` on one large website (target: under 200 MB for 10,000 pages).

Starts a loopback site of N pages (default 10,000): real development-set text in a page with a
navigation bar, neighbours and a sitemap listing every page, like a school site with years of news.
Runs `ccqm crawl` on it in a child process, as the nightly job would, and reads the child's peak RSS.
Every page is `/news/N/`, one URL pattern, so the per-pattern cap is lifted to reach them all.
Ends with one line `site_memory: PEAK_MB pages=N stored=N seconds=S`.

    python bench/site_memory.py [--pages 10000]
"""

from __future__ import annotations

import argparse
import html
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from harvester.app.train import load_set  # noqa: E402
from tests.loopback import LoopbackServer, serving  # noqa: E402

HTML = "text/html; charset=utf-8"
NAV = "".join(f'<li><a href="/{name}/">{name.title()}</a></li>' for name in
              ("about", "admissions", "curriculum", "news", "governors", "policies", "contact", "vacancies"))


def page(n: int, pages: int, text: str) -> bytes:
    near = "".join(f'<li><a href="/news/{k}/">News item {k}</a></li>'
                   for k in (n + 1, n + 2, n + 7, n * 3 + 1, (n * 17) % pages) if k < pages)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>News {n} | School</title>'
            f'<link rel="stylesheet" href="/style.css"></head><body><header><nav><ul>{NAV}</ul></nav></header>'
            f'<main><article><h1>News item {n}</h1><p>{html.escape(text)}</p><p>{html.escape(text[::-1])}</p>'
            f'</article><aside><h2>More news</h2><ul>{near}</ul></aside></main>'
            f'<footer><p>School, 1 Example Road. Registered charity. Cookie notice: we use cookies.</p></footer>'
            f'</body></html>').encode()


def build_site(site: LoopbackServer, pages: int, texts: list[str]) -> None:
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"},
                                  f"User-agent: *\nAllow: /\nSitemap: {site.base}/sitemap.xml\n".encode())
    urls = "".join(f"<url><loc>{site.base}/news/{n}/</loc></url>" for n in range(pages))
    site.routes["/sitemap.xml"] = (200, {"Content-Type": "application/xml"},
                                   f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/'
                                   f'schemas/sitemap/0.9">{urls}</urlset>'.encode())
    site.routes["/"] = (200, {"Content-Type": HTML}, page(0, pages, texts[0]))
    for n in range(pages):
        site.routes[f"/news/{n}/"] = (200, {"Content-Type": HTML}, page(n, pages, texts[n % len(texts)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    args = parser.parse_args()
    texts = [e.text for e in load_set(ROOT / "fixtures" / "labelled")]
    with tempfile.TemporaryDirectory() as tmp, serving(LoopbackServer) as site:
        build_site(site, args.pages, texts)
        config = Path(tmp) / "config"
        config.mkdir()
        (config / "organisations.toml").write_text(
            f'[[organisation]]\nid = "big-school"\nname = "Big School"\nkind = "school"\nregistered = 2026-01-01\n'
            f'step = 3\nwebsite = "{site.base}/"\n', encoding="utf-8")
        (config / "settings.toml").write_text(
            "[http]\nallow_networks = ['127.0.0.1/32']\n[harvest]\ndelay_seconds = 0.0\n"
            f"max_pages_per_site = {args.pages + 10}\nmax_pages_per_pattern = {args.pages + 10}\nmax_depth = 50\n"
            "site_budget_seconds = 3600\n", encoding="utf-8")
        (config / "rubric.toml").write_text((ROOT / "config" / "rubric.toml").read_text(encoding="utf-8"),
                                            encoding="utf-8")
        db = Path(tmp) / "big.duckdb"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCQM_")}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "harvester", "--config", str(config), "--db", str(db), "crawl"],
                              env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"site_memory: the crawl failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with duckdb.connect(str(db), read_only=True) as con:
            stored = con.execute("SELECT count(*) FROM items").fetchone()[0]
    print(f"crawled a {args.pages}-page site in {seconds:.0f} s ({stored / seconds:.0f} pages/s); "
          f"{stored} items stored; peak RSS {peak_mb:.0f} MB")
    print(f"site_memory: {peak_mb:.0f} pages={args.pages} stored={stored} seconds={seconds:.0f}")


if __name__ == "__main__":
    main()

"""Dossiers in real headless Chromium: payloads never execute, nothing is fetched, the page renders."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.test_reports import write_hostile_dossier

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (.ci/run installs Debian's chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=2000"]
# Each payload would set a DOM attribute if it ran; its source text never contains the result.
RUNNING = ['<script>document.documentElement.dataset.x = "pw" + "ned1"</script>',
           '"><img src=x onerror="document.documentElement.dataset.x = \'pw\' + \'ned2\'">',
           '<svg onload="document.documentElement.dataset.x = \'pw\' + \'ned3\'">',
           "</title><script>document.documentElement.dataset.x = 'pw' + 'ned4'</script>"]


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=90)


def test_no_harvested_payload_executes_in_chromium(tmp_path):
    dossier = write_hostile_dossier(tmp_path, RUNNING)
    result = chromium(tmp_path, "--dump-dom", dossier.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<main>" in dom and "Hostile" in dom  # the page did render
    assert "pwned" not in dom
    # Escaping, not only the CSP, stops them: no payload became an element at all.
    for tag in ("<script", "<img", "<iframe"):
        assert tag not in dom
    assert dom.count("<svg") == 1  # only our own timeline


def test_demo_dossier_renders_at_desktop_and_phone_widths(tmp_path, harvested):
    dossier = harvested.result.index.parent / "greenfield-primary.html"
    for name, size in (("desktop", "1280,2000"), ("phone", "390,2000")):
        shot = tmp_path / f"{name}.png"
        result = chromium(tmp_path, f"--window-size={size}", f"--screenshot={shot}", dossier.as_uri())
        assert result.returncode == 0, result.stderr[-2000:]
        assert shot.stat().st_size > 20_000  # a real page, not a blank one
    dom = chromium(tmp_path, "--dump-dom", dossier.as_uri()).stdout
    assert dom.count('class="card"') == 5 and "<svg" in dom


def test_a_long_unbroken_title_stays_inside_its_card_at_phone_width(tmp_path):
    """Measured in Chromium: a wrapper page (ours, served with the dossier from one loopback
    origin) frames the dossier at phone width and reports whether any card's content overflows it."""
    import datetime as dt
    import http.server
    import threading
    from functools import partial

    from harvester.app.assess import score
    from harvester.app.dossiers import write_dossiers
    from harvester.config.settings import load_settings
    from harvester.items import Item, Snapshot
    from harvester.store.db import open_store
    from tests.test_assess import GOALS, ORG
    from tests.conftest import write_config

    now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    settings = load_settings(write_config(tmp_path / "config", organisations=ORG), db=tmp_path / "db.duckdb",
                             out=tmp_path / "out", env={})
    title = "Equality" + "x" * 292  # 300 characters, no break
    with open_store(settings.db_path) as store:
        store.save_item(Item(org_id="oakfield", source_id="oakfield/website/x", platform="website", kind="page",
                             native_id="https://oakfield.example/long/", url="https://oakfield.example/long/",
                             title=title, text=GOALS, published=now,
                             snapshot=Snapshot(url="https://oakfield.example/long/", fetched_at=now, status=200,
                                               content_type="text/html", body=b"x")), now)
    score(settings, settings.organisations, now=now)
    out = write_dossiers(settings, settings.organisations, now=now).parent
    assert title in (out / "oakfield.html").read_text(encoding="utf-8")
    (out / "measure.html").write_text("""<!doctype html><html><body style="margin:0">
<iframe id="f" src="oakfield.html" style="width:390px;height:3000px;border:0"></iframe>
<script>
document.getElementById("f").addEventListener("load", () => {
  const doc = document.getElementById("f").contentDocument;
  const cards = [...doc.querySelectorAll(".card")];
  const over = cards.filter(c => c.scrollWidth > c.clientWidth + 1 ||
      [...c.querySelectorAll("*")].some(e => e.getBoundingClientRect().right > c.getBoundingClientRect().right + 1));
  document.body.setAttribute("data-result", cards.length + " cards, " + over.length + " overflowing, page " +
      doc.documentElement.scrollWidth + "px");
});
</script></body></html>""", encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = chromium(tmp_path, "--window-size=390,3000", "--dump-dom",
                          f"http://127.0.0.1:{server.server_address[1]}/measure.html")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr[-2000:]
    verdict = result.stdout.split('data-result="', 1)[1].split('"', 1)[0]
    cards, overflowing, page = verdict.split(", ")
    assert cards == "5 cards" and overflowing == "0 overflowing", verdict
    assert int(page.split()[1].removesuffix("px")) <= 390, verdict  # the page does not scroll sideways


class QuietFiles(__import__("http.server").server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

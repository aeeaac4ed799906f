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

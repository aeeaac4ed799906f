"""The whole pipeline on the demo world: harvest, score, dossiers; and a second harvest adds nothing."""

from __future__ import annotations

import subprocess
import sys

from lxml import html

from harvester.assess import score
from harvester.dossiers import write_dossiers
from harvester.pipeline import harvest
from harvester.store import open_store
from scoring import CRITERIA


def test_demo_pipeline_ranks_ready_above_new_and_second_harvest_adds_nothing(demo_settings):
    settings = demo_settings
    first = harvest(settings, settings.organisations)
    assert not first.failed, [o.errors for o in first.failed]
    assert first.totals["new"] > 40

    outcomes = {o.org.id: o.after for o in score(settings, settings.organisations)}
    ready, new, mixed = outcomes["greenfield-primary"], outcomes["riverside-larder"], outcomes["castlegate-logistics"]
    for criterion in CRITERIA:
        assert ready.criterion(criterion).score > new.criterion(criterion).score, criterion
    assert ready.award.level is not None
    assert new.award.level is None
    # the mixed organisation sits between: goals and actions, but no survey results
    assert mixed.criterion("goals_set").score > 0
    assert mixed.criterion("quiz_outcomes").score < ready.criterion("quiz_outcomes").score

    with open_store(settings.db_path) as store:
        before = store.counts()
    second = harvest(settings, settings.organisations)
    assert not second.failed
    with open_store(settings.db_path) as store:
        after = store.counts()
    assert after["items"] == before["items"]
    assert after["snapshots"] == before["snapshots"]
    assert second.totals["new"] == 0 and second.totals["changed"] == 0
    assert second.totals["unchanged"] > 0  # pages answered 304 or hashed the same


def test_robots_disallowed_pages_are_never_harvested(demo_settings):
    harvest(demo_settings, demo_settings.organisations)
    with open_store(demo_settings.db_path) as store:
        texts = store.con.execute("SELECT string_agg(text, ' ') FROM items").fetchone()[0]
    assert "DISALLOWED-PAGE-MARKER" not in texts


def test_index_lists_every_organisation_with_its_dossier(demo_settings):
    harvest(demo_settings, demo_settings.organisations)
    score(demo_settings, demo_settings.organisations)
    index = write_dossiers(demo_settings, demo_settings.organisations)
    page = html.fromstring(index.read_text(encoding="utf-8"))
    links = {a.text_content().strip(): a.get("href") for a in page.iter("a")}
    for org in demo_settings.organisations:
        assert links[org.name] == f"{org.id}.html"
        dossier = html.fromstring((index.parent / f"{org.id}.html").read_text(encoding="utf-8"))
        assert org.name in dossier.findtext(".//h1")
        cards = dossier.xpath('//article[contains(@class, "card")]')
        assert len(cards) == 5


def test_ccqm_demo_command_prints_the_index_path(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "harvester", "demo", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    index = result.stdout.strip().splitlines()[-1]
    assert index == str((out / "dossiers" / "index.html").resolve())
    text = open(index, encoding="utf-8").read()
    for name in ("Greenfield Primary School", "Riverside Community Larder", "Castlegate Logistics Ltd"):
        assert name in text


def test_an_edited_page_keeps_both_versions_and_a_deleted_one_stays_as_evidence(tmp_path):
    import shutil

    from harvester.demo import DEMO, PROJECT, render_config
    from harvester.settings import load_settings
    from harvester.world import serve_world

    world_dir = tmp_path / "world"
    shutil.copytree(DEMO / "world", world_dir)
    post = world_dir / "sites" / "castlegate" / "news" / "2026" / "09" / "multi-faith-prayer-and-quiet-room-opens" / "index.html"
    gone = world_dir / "sites" / "castlegate" / "careers" / "warehouse-operative" / "index.html"
    with serve_world(world_dir) as world:
        config = render_config(DEMO / "config", tmp_path / "config", world, PROJECT / "config" / "rubric.toml")
        settings = load_settings(config, db=tmp_path / "ccqm.duckdb", env={})
        chosen = (settings.organisation("castlegate-logistics"),)
        harvest(settings, chosen)
        post.write_text(post.read_text(encoding="utf-8").replace(
            "</article>", "<p>Update: 37 colleagues used the room in its first month.</p></article>"), encoding="utf-8")
        gone.unlink()
        report = harvest(settings, chosen)
    assert report.totals["changed"] >= 1 and report.totals["gone"] == 1
    with open_store(settings.db_path) as store:
        url = world.sites["castlegate"] + "/news/2026/09/multi-faith-prayer-and-quiet-room-opens/"
        versions = store.con.execute("SELECT count(*) FROM snapshots s JOIN items i ON i.id = s.item_id "
                                     "WHERE i.url = ? AND i.platform = 'website'", [url]).fetchone()[0]
        assert versions == 2
        text, gone_at = store.con.execute("SELECT text, gone_at FROM items WHERE url = ?",
                                          [world.sites["castlegate"] + "/careers/warehouse-operative/"]).fetchone()
        assert gone_at is not None and "warehouse" in text.lower()

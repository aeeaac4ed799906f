"""The whole round on the demo world: harvest, score, dossiers; a second harvest adds nothing; the
demo command; edits and deletions kept as evidence; redirects keep a page's identity."""

from __future__ import annotations

import shutil

from lxml import html

from harvester.app.harvest import harvest
from harvester.config.settings import load_settings
from harvester.demo import CONFIG, WORLD, render_config
from harvester.demo.server import serve_world
from harvester.store.db import open_store
from scoring import CRITERIA
from tests.conftest import PROJECT
from tests.test_config import run_ccqm


def test_demo_round_ranks_ready_above_new(harvested):
    report = harvested.result.report
    assert not report.failed, [o.errors for o in report.failed]
    assert report.totals["new"] > 40
    outcomes = {o.org.id: o.after for o in harvested.result.scores}
    ready, new, mixed = outcomes["greenfield-primary"], outcomes["riverside-larder"], outcomes["castlegate-logistics"]
    for criterion in CRITERIA:
        assert ready.criterion(criterion).score > new.criterion(criterion).score, criterion
    assert ready.award.level is not None
    assert new.award.level is None
    # the mixed organisation sits between: goals and actions, but no survey results
    assert mixed.criterion("goals_set").score > 0
    assert mixed.criterion("quiz_outcomes").score < ready.criterion("quiz_outcomes").score


def test_a_second_harvest_adds_nothing(harvested_copy):
    with open_store(harvested_copy.db_path) as store:
        before = store.counts()
    second = harvest(harvested_copy, harvested_copy.organisations)
    assert not second.failed
    with open_store(harvested_copy.db_path) as store:
        after = store.counts()
    assert after["items"] == before["items"]
    assert after["snapshots"] == before["snapshots"]
    assert second.totals["new"] == 0 and second.totals["changed"] == 0
    assert second.totals["unchanged"] > 0  # pages answered 304 or hashed the same


def test_robots_disallowed_pages_are_never_harvested(harvested):
    with open_store(harvested.settings.db_path, read_only=True) as store:
        texts = store.con.execute("SELECT string_agg(text, ' ') FROM items").fetchone()[0]
    assert "DISALLOWED-PAGE-MARKER" not in texts


def test_index_lists_every_organisation_with_its_dossier(harvested):
    index = harvested.result.index
    page = html.fromstring(index.read_text(encoding="utf-8"))
    links = {a.text_content().strip(): a.get("href") for a in page.iter("a")}
    for org in harvested.settings.organisations:
        assert links[org.name] == f"{org.id}.html"
        dossier = html.fromstring((index.parent / f"{org.id}.html").read_text(encoding="utf-8"))
        assert org.name in dossier.findtext(".//h1")
        cards = dossier.xpath('//article[contains(@class, "card")]')
        assert len(cards) == 5


def test_the_evidence_table_marks_text_only_where_an_item_evidences_a_criterion(harvested):
    dossier = html.fromstring((harvested.result.index.parent / "riverside-larder.html").read_text(encoding="utf-8"))
    labels = {c.findtext(".//h3").strip() for c in dossier.xpath('//article[contains(@class, "card")]')}
    rows = dossier.xpath('//tr[starts-with(@id, "item-")]')
    evidencing = [r for r in rows if r.xpath("td")[3].text_content() != "—"]
    assert evidencing and len(evidencing) < len(rows)
    for row in rows:
        criteria = row.xpath("td")[3].text_content()
        assert bool(row.xpath(".//mark")) == (criteria != "—"), row.get("id")
        assert criteria == "—" or set(criteria.split(", ")) <= labels  # "Actions taken", not a key


def test_every_cited_item_says_which_words_weighed_most(harvested):
    dossier = html.fromstring((harvested.result.index.parent / "greenfield-primary.html").read_text(encoding="utf-8"))
    cites = dossier.xpath('//ol[@class="cites"]/li')
    assert cites
    for cite in cites:
        assert "Weighed most: " in cite.text_content()
        assert "Signals: passage" not in cite.text_content()  # a name of ours, not a reason a validator can read


def test_index_ranks_organisations_readiest_first(harvested):
    """A validator reading the index sees award holders above organisations only starting, and,
    within one recommendation, the stronger evidence first."""
    page = html.fromstring(harvested.result.index.read_text(encoding="utf-8"))
    heads = [th.text_content().strip() for th in page.xpath("(//main//table)[1]//thead//th")]
    award_col, evidence_col = heads.index("Recommendation"), heads.index("Evidence")
    rows = [[td.text_content().strip() for td in tr.xpath("td")] for tr in page.xpath("(//main//table)[1]//tbody/tr")]
    order = {"Gold": 0, "Silver": 1, "Bronze": 2, "none yet": 3}
    keys = [(order[r[award_col]], -int(r[evidence_col].rstrip("%"))) for r in rows]
    assert len(rows) == len(harvested.settings.organisations)
    assert keys == sorted(keys), rows
    assert keys[0][0] < keys[-1][0]  # the demo holds award holders and an organisation with none


def test_ccqm_demo_command_prints_the_index_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any folder: the demo world ships inside the package
    out = tmp_path / "demo"
    result = run_ccqm("demo", "--out", str(out))
    assert result.returncode == 0, result.stderr
    index = result.stdout.strip().splitlines()[-1]
    assert index == str((out / "dossiers" / "index.html").resolve())
    text = open(index, encoding="utf-8").read()
    for name in ("Greenfield Primary School", "Riverside Community Larder", "Castlegate Logistics Ltd"):
        assert name in text


def _private_world(tmp_path):
    world_dir = tmp_path / "world"
    shutil.copytree(WORLD, world_dir)
    return world_dir


def test_an_edited_page_keeps_both_versions_and_a_deleted_one_stays_as_evidence(tmp_path):
    world_dir = _private_world(tmp_path)
    post = world_dir / "sites" / "castlegate" / "news" / "2026" / "09" / "multi-faith-prayer-and-quiet-room-opens" / "index.html"
    gone = world_dir / "sites" / "castlegate" / "careers" / "warehouse-operative" / "index.html"
    with serve_world(world_dir) as world:
        config = render_config(CONFIG, tmp_path / "config", world, PROJECT / "config" / "rubric.toml")
        settings = load_settings(config, db=tmp_path / "ccqm.duckdb", env={})
        chosen = (settings.organisation("castlegate-logistics"),)
        harvest(settings, chosen)
        post.write_text(post.read_text(encoding="utf-8").replace(
            "</article>", "<p>Update: 37 colleagues used the room in its first month.</p></article>"), encoding="utf-8")
        gone.unlink()
        # as a CMS does: the edited page's <lastmod> moves on, the deleted page leaves the sitemap
        sitemap = world_dir / "sites" / "castlegate" / "sitemap.xml"
        entries = sitemap.read_text(encoding="utf-8").split("<url>")
        sitemap.write_text("<url>".join(
            entry.replace("</loc>\n    <lastmod>2026-09-", "</loc>\n    <lastmod>2026-11-")
            if "multi-faith-prayer" in entry else entry
            for entry in entries if "warehouse-operative" not in entry), encoding="utf-8")
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


def test_refusals_are_counted_and_shown_as_coverage(harvested):
    with open_store(harvested.settings.db_path, read_only=True) as store:
        refused = dict(store.con.execute("SELECT source_id, refused FROM run_sources WHERE refused > 0").fetchall())
    assert refused, "robots.txt denials in the demo world were not counted"
    source_id = next(iter(refused))
    org_id = source_id.split("/")[0]
    dossier = (harvested.result.index.parent / f"{org_id}.html").read_text(encoding="utf-8")
    assert "not collected on purpose in the last run" in dossier


def test_each_evidenced_step_names_the_items_that_evidence_it(harvested):
    """A validator checking a step can go from it to the evidence behind it."""
    for org in harvested.settings.organisations:
        dossier = html.fromstring((harvested.result.index.parent / f"{org.id}.html").read_text(encoding="utf-8"))
        rows = {r.get("id") for r in dossier.xpath('//tr[starts-with(@id, "item-")]')}
        for step in dossier.xpath('//ol[@class="steps"]/li'):
            links = step.xpath('.//ul[contains(@class, "step-items")]//a')
            assert bool(links) == ("evidenced by" in step.text_content()), step.text_content()
            for a in links:
                assert a.get("href").startswith("#item-") and a.get("href")[1:] in rows
                assert a.text_content().strip()

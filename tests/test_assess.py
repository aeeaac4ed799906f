"""Scoring stored evidence: the cache key names the rubric and the classifier, so a new model
reclassifies; undated evidence is shown as undated and counts for its criterion only."""

from __future__ import annotations

import datetime as dt

from lxml import html

from harvester.app.assess import score
from harvester.app.dossiers import write_dossiers
from harvester.config.settings import load_settings
from harvester.items import Item, Snapshot
from harvester.store.db import open_store
from tests.conftest import write_classifier, write_config

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
ORG = """
[[organisation]]
id = "oakfield"
name = "Oakfield Academy"
kind = "school"
registered = 2026-01-01
step = 5
website = "https://oakfield.example/"
"""
GOALS = ("Our equality objectives for 2025 to 2028: by July 2027 we aim to raise the number of governors from "
         "Black and minority ethnic backgrounds to reflect our pupils, and to train every member of staff in "
         "anti-racist practice.")


def page(n: int, text: str, published: dt.datetime | None) -> Item:
    return Item(org_id="oakfield", source_id="oakfield/website/https://oakfield.example/", platform="website",
                kind="page", native_id=f"https://oakfield.example/p{n}/", url=f"https://oakfield.example/p{n}/",
                title=f"Page {n}", text=text, published=published,
                snapshot=Snapshot(url=f"https://oakfield.example/p{n}/", fetched_at=NOW, status=200,
                                  content_type="text/html", body=text.encode()))


def settings_with(tmp_path, items):
    config = write_config(tmp_path / "config", organisations=ORG)
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})
    with open_store(settings.db_path) as store:
        store.sync_organisations(settings.organisations, NOW)
        for it in items:
            store.save_item(it, NOW)
    return settings


def test_a_new_classifier_reclassifies_everything_once(tmp_path):
    settings = settings_with(tmp_path, [page(1, GOALS, NOW), page(2, "School dinners: pasta bake.", NOW)])
    assert score(settings, settings.organisations, now=NOW)[0].classified == 2
    assert score(settings, settings.organisations, now=NOW)[0].classified == 0  # cached

    write_classifier(settings.config_dir, lambda artefact: artefact.update(version="retrained"))
    retrained = load_settings(settings.config_dir, db=settings.db_path, out=settings.dossier_dir, env={})
    assert retrained.scorer_key != settings.scorer_key and "retrained" in retrained.scorer_key
    outcome = score(retrained, retrained.organisations, now=NOW)[0]
    assert outcome.classified == 2
    assert outcome.after.rubric_version == retrained.scorer_key


def test_undated_evidence_is_shown_as_undated_and_not_placed_in_time(tmp_path):
    settings = settings_with(tmp_path, [page(1, GOALS, None)])
    outcome = score(settings, settings.organisations, now=NOW)[0]
    goals = outcome.after.criterion("goals_set")
    assert goals.cited and "undated" in goals.reasons[0] and "month" not in goals.reasons[0]  # it counts, but for no month
    index = write_dossiers(settings, settings.organisations, now=NOW)
    dossier = html.fromstring((index.parent / "oakfield.html").read_text(encoding="utf-8"))
    marked = dossier.xpath('//span[@class="undated"]/text()')
    assert marked and all(m.startswith("date unknown (found 01 Nov 2026)") for m in marked)
    assert "1 more item of evidence gives no date and is not shown" in dossier.text_content()


def test_every_item_gets_its_own_texts_classification_on_every_core_when_texts_repeat(
        tmp_path, monkeypatch):
    import harvester.app.assess as assess
    from scoring import classify_text

    monkeypatch.setattr(assess, "PARALLEL_FROM", 4)  # worker processes, without 400 items to pay for them
    texts = [GOALS, "School dinners: pasta bake.", "We surveyed 120 parents: 84% said they feel welcome.",
             "Term dates for 2026 to 2027.", "Our staff trained in anti-racist practice this term."]
    items = [page(n, texts[n % len(texts)], NOW) for n in range(12)]  # each text on two or three pages
    settings = settings_with(tmp_path, items)
    outcome = score(settings, settings.organisations, now=NOW)[0]
    assert outcome.classified == 12
    with open_store(settings.db_path) as store:
        rows = {row["url"]: row for row in store.items_for("oakfield")}
        stored = store.classifications(list(rows.values()), settings.scorer_key)
    for n, it in enumerate(items):
        expected = classify_text(f"{it.title}\n{it.text}", settings.rubric, settings.model)
        got = stored[rows[it.url]["id"]]
        assert got.criteria == expected.criteria and got.steps == expected.steps, it.url


def test_organisations_with_and_without_new_text_are_each_scored_once_in_registry_order(tmp_path, monkeypatch):
    """Organisations are rolled up as soon as their last item is classified: one with nothing new
    at once, one whose text also appears elsewhere when that text's classification arrives."""
    import harvester.app.assess as assess

    monkeypatch.setattr(assess, "PARALLEL_FROM", 2)
    orgs = ORG + ORG.replace('id = "oakfield"', 'id = "brook"').replace("Oakfield Academy", "Brook School") \
        .replace("https://oakfield.example/", "https://brook.example/")
    config = write_config(tmp_path / "config", organisations=orgs)
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})

    def at(org: str, n: int, text: str) -> Item:
        url = f"https://{org}.example/p{n}/"
        return Item(org_id=org, source_id=f"{org}/website/https://{org}.example/", platform="website", kind="page",
                    native_id=url, url=url, title="", text=text, published=NOW)

    with open_store(settings.db_path) as store:
        store.sync_organisations(settings.organisations, NOW)
        store.save_items([at("oakfield", 1, GOALS), at("brook", 1, "School dinners: pasta bake.")], NOW)
    score(settings, settings.organisations, now=NOW)
    with open_store(settings.db_path) as store:  # brook publishes the goals oakfield published
        store.save_items([at("brook", 2, GOALS), at("brook", 3, "Term dates for 2026 to 2027.")], NOW)

    oak, brook = score(settings, settings.organisations, now=NOW)
    assert (oak.org.id, oak.classified, oak.changes) == ("oakfield", 0, [])
    assert (brook.org.id, brook.classified) == ("brook", 2)
    assert brook.after.criterion("goals_set").level != "none"
    assert brook.before.criterion("goals_set").level == "none" and brook.changes
    with open_store(settings.db_path) as store:
        assert [run.org_id for run in [store.latest_score("oakfield"), store.latest_score("brook")]] == \
            ["oakfield", "brook"]


def test_a_worker_that_finds_another_classifier_than_the_scoring_began_with_refuses_to_classify(tmp_path):
    """Workers load the classifier from its file: one retrained meanwhile (`ccqm train --decisions`)
    must not be saved under the old one's key."""
    import pytest

    import harvester.app.assess as assess
    from harvester.config.classifier import classifier_path
    from harvester.errors import UsageError

    settings = settings_with(tmp_path, [page(1, GOALS, NOW)])
    path = classifier_path(settings.config_dir)
    assess._start_worker(settings.rubric, path, settings.model.key)
    assert assess._classify_in_worker(GOALS).criteria == assess.classify_text(GOALS, settings.rubric,
                                                                              settings.model).criteria
    assess._start_worker(settings.rubric, path, "2026.01-1:0123456789ab")
    with pytest.raises(UsageError, match="the classifier changed during scoring"):
        assess._classify_in_worker(GOALS)

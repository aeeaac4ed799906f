"""Validators' decisions teach the classifier and grade it: `ccqm train --decisions` learns the
council's own judgement of the items it scores, writes the model into the config folder, and
scoring uses it; every decision keeps the machine's score it was made against, and the index's
report card sets the two side by side."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re

import duckdb
import pytest

from harvester.app.train import batch_files
from harvester.config.classifier import load_classifier, packaged_classifier_path
from scoring import Override, agreement, decisions
from scoring.learned import judge
from tests.conftest import PROJECT
from tests.test_cli import cli

SET = PROJECT / "fixtures" / "labelled"
AT = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)


def small_set(folder):
    """Every eighth excerpt of the development set: enough to learn from in a second or two."""
    lines = [line for path in batch_files(SET)
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    (folder / "raw").mkdir(parents=True)
    (folder / "raw" / "part.jsonl").write_text("\n".join(lines[::8]) + "\n", encoding="utf-8")
    return folder


def cited(db, org, criterion):
    con = duckdb.connect(str(db), read_only=True)
    try:
        result = json.loads(con.execute("SELECT result FROM score_runs WHERE org_id = ? ORDER BY scored_at DESC "
                                        "LIMIT 1", [org]).fetchone()[0])["data"]
        top = next(c for c in result["criteria"] if c["criterion"] == criterion)["cited"][0]["item_id"]
        title, text = con.execute("SELECT title, text FROM items WHERE id = ?", [top]).fetchone()
    finally:
        con.close()
    return top, f"{title}\n{text}" if title else text


def said(item, action, criterion, minutes, machine=()):
    return Override(item_id=item, action=action, criterion=criterion, note="", by="v",
                    at=AT + dt.timedelta(minutes=minutes), machine=tuple(machine))


def test_the_latest_include_or_exclude_stands_and_notes_decide_nothing():
    found = decisions([said("a", "include", "goals_set", 2), said("a", "exclude", "goals_set", 1),
                       said("b", "exclude", None, 1), said("b", "include", "quiz_outcomes", 3),
                       said("c", "note", None, 1)])
    assert found["a"] == {"goals_set": "include"}
    assert found["b"] == {"self_reflection": "exclude", "quiz_outcomes": "include", "goals_set": "exclude",
                          "actions_taken": "exclude", "progress_shared": "exclude"}
    assert "c" not in found


def test_the_report_card_sets_each_standing_decision_against_the_score_the_validator_saw():
    low = {name: 0.2 for name in ("self_reflection", "quiz_outcomes", "goals_set", "actions_taken", "progress_shared")}
    card = {a.criterion: a for a in agreement([
        said("a", "include", "goals_set", 1, {**low, "goals_set": 0.8}.items()),  # agreed
        said("b", "include", "goals_set", 1, low.items()),  # missed, added
        said("c", "exclude", "goals_set", 1, {**low, "goals_set": 0.7}.items()),  # counted, dropped
        said("d", "exclude", "goals_set", 1, low.items()),  # agreed: neither counts it
        said("e", "exclude", None, 1, {**low, "actions_taken": 0.9}.items()),  # dropped from actions only
        said("f", "exclude", "quiz_outcomes", 1, {**low, "quiz_outcomes": 0.9}.items()),
        said("f", "include", "quiz_outcomes", 2, {**low, "quiz_outcomes": 0.9}.items()),  # changed their mind
        said("g", "include", "progress_shared", 1),  # decided before scores were recorded: left out
    ], counts_from=0.5)}
    assert (card["goals_set"].agreed, card["goals_set"].dropped, card["goals_set"].added) == (2, 1, 1)
    assert (card["actions_taken"].decided, card["actions_taken"].dropped) == (1, 1)
    assert card["self_reflection"].decided == 0  # an exclusion from all says nothing of what was not counted
    assert (card["quiz_outcomes"].decided, card["quiz_outcomes"].agreed) == (1, 1)
    assert card["progress_shared"].decided == 0


def test_an_include_teaches_the_passage_read_for_it_and_an_exclude_every_passage(model):
    pytest.importorskip("sklearn", reason="the `train` extra (scikit-learn) is not installed")
    from harvester.app.train import decided_item, decision_excerpts

    body = ("Our staff survey in March found that 62% of colleagues felt able to speak up. "
            "We have since trained every line manager in inclusive recruitment. "
            "Our objective for 2027 is to halve the gap in pay between ethnic groups. ") * 6
    excerpts = decision_excerpts("item-1", "https://example.org/news/", "school", body,
                                 {"goals_set": "exclude", "quiz_outcomes": "include"}, model)
    judged = judge(body, model)
    for e in excerpts:
        assert e.text in body and e.url == "https://example.org/news/" and decided_item(e) == "decision-item-1"
        assert e.labels == e.decided & {"quiz_outcomes"}  # an exclude is a negative; nothing said of the rest
    cited = [e for e in excerpts if "quiz_outcomes" in e.decided]
    start, end = judged["quiz_outcomes"].span
    assert [e.text for e in cited] == [body[start:end]]  # the passage it read for the include, only
    excluded = [e for e in excerpts if "goals_set" in e.decided]
    assert len(excluded) > 1 and len({e.text for e in excluded}) == len(excluded)
    covered = set()
    for e in excluded:
        start = int(e.id.rsplit("-", 1)[1])
        assert body[start:start + len(e.text)] == e.text
        covered.update(range(start, start + len(e.text)))
    assert {i for i, ch in enumerate(body) if not ch.isspace()} <= covered  # no passage left to carry the item


def test_the_development_sets_folds_stay_the_same_whatever_is_decided():
    from harvester.app.train import Excerpt, folds

    dev = [Excerpt(id=f"d{i}", url=f"https://x.example/{i % 37}", org_kind="school", text=f"t{i}",
                   labels=frozenset()) for i in range(200)]
    decided = [Excerpt(id=f"v{i}", url=f"https://org.example/{i}", org_kind="charity", text=f"v{i}",
                       labels=frozenset(), decided=frozenset({"goals_set"})) for i in range(9)]
    with_decisions = folds(dev + decided)
    assert [[i for i in fold if i < len(dev)] for fold in with_decisions] == folds(dev)
    assert sorted(i for fold in with_decisions for i in fold) == list(range(len(dev) + len(decided)))


def test_train_with_decisions_learns_them_and_scoring_uses_the_new_model(harvested_copy, tmp_path):
    pytest.importorskip("sklearn", reason="the `train` extra (scikit-learn) is not installed")
    config, db = harvested_copy.config_dir, harvested_copy.db_path
    data = small_set(tmp_path / "set")
    packaged = hashlib.sha256(packaged_classifier_path().read_bytes()).hexdigest()

    nothing = cli(config, db, "train", "--decisions", "--data", str(data))
    assert nothing.returncode == 2 and "no validator has included or excluded" in nothing.stderr
    assert str(db) in nothing.stderr and not (config / "classifier.json.gz").exists()

    plain = cli(config, db, "train", "--data", str(data), "--out", str(tmp_path / "plain.json.gz"))
    assert plain.returncode == 0, plain.stderr
    item, body = cited(db, "castlegate-logistics", "goals_set")
    assert cli(config, db, "override", "castlegate-logistics", item, "--exclude", "goals_set",
               "--note", "a supplier's plan", "--by", "A. Validator").returncode == 0

    taught = cli(config, db, "train", "--decisions", "--data", str(data))
    assert taught.returncode == 0, taught.stderr
    assert re.search(r"\b\d+ passages of 1 items decided by validators", taught.stderr)  # every passage: an exclude
    assert "of the validators' 1 decisions" in taught.stderr
    own = config / "classifier.json.gz"
    assert f"wrote {own}" in taught.stdout
    assert hashlib.sha256(packaged_classifier_path().read_bytes()).hexdigest() == packaged  # never replaced
    assert json.loads(gzip.decompress(own.read_bytes()))["trained_on"]["decisions"] == 1
    before = judge(body, load_classifier(tmp_path / "plain.json.gz"))["goals_set"].score
    after = judge(body, load_classifier(own))["goals_set"].score
    assert before >= 0.5 > after, (before, after)  # one exclusion among ~1,800 excerpts: no goal read there now

    again = cli(config, db, "train", "--decisions", "--data", str(data), "--out", str(tmp_path / "again.json.gz"))
    assert again.returncode == 0 and (tmp_path / "again.json.gz").read_bytes() == own.read_bytes()  # reproducible

    rescored = cli(config, db, "rescore", "castlegate-logistics", "--out", str(tmp_path / "dossiers"))
    assert rescored.returncode == 0, rescored.stderr
    con = duckdb.connect(str(db), read_only=True)
    keys = {r[0] for r in con.execute("SELECT DISTINCT c.rubric_version FROM classifications c JOIN attributions a "
                                      "ON a.item_id = c.item_id WHERE a.org_id = 'castlegate-logistics'").fetchall()}
    con.close()
    digest = hashlib.sha256(own.read_bytes()).hexdigest()
    assert any(digest[:12] in key for key in keys), keys  # classified afresh by the config folder's model


def test_a_decision_keeps_the_score_it_overruled_and_the_index_grades_the_scorer(harvested_copy, tmp_path):
    config, db, out = harvested_copy.config_dir, harvested_copy.db_path, tmp_path / "dossiers"
    item, _ = cited(db, "castlegate-logistics", "goals_set")
    con = duckdb.connect(str(db), read_only=True)
    key = con.execute("SELECT rubric_version FROM score_runs WHERE org_id = 'castlegate-logistics' "
                      "ORDER BY scored_at DESC LIMIT 1").fetchone()[0]
    result = json.loads(con.execute("SELECT c.result FROM classifications c JOIN items i ON i.id = c.item_id AND "
                                    "i.content_hash = c.content_hash WHERE c.item_id = ? AND c.rubric_version = ?",
                                    [item, key]).fetchone()[0])["data"]
    con.close()
    seen = result["criteria"]["goals_set"]["score"]
    assert cli(config, db, "dossier", "--out", str(out)).returncode == 0
    assert "report card" not in (out / "index.html").read_text(encoding="utf-8")  # nothing decided yet

    excluded = cli(config, db, "override", "castlegate-logistics", item, "--exclude", "goals_set",
                   "--note", "a supplier's plan", "--by", "A. Validator")
    assert excluded.returncode == 0, excluded.stderr
    assert f"the machine scored it {seen:.2f} for goals_set: counted" in excluded.stdout
    assert cli(config, db, "rescore", "castlegate-logistics", "--out", str(out)).returncode == 0

    dossier = (out / "castlegate-logistics.html").read_text(encoding="utf-8")
    assert f"<td>exclude goals_set</td><td>{seen:.2f}, counted</td>" in dossier
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "The scorer&#39;s report card" in index or "The scorer's report card" in index
    goals = re.search(r"<tr><td>Goals set</td><td>(\d+)</td><td>(\d+)[^<]*</td><td>(\d+)</td><td>(\d+)</td></tr>", index)
    assert goals and goals.groups() == ("1", "0", "1", "0")

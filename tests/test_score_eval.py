"""The scorer's quality gate, in the manner of trafilatura's evaluation gate: the classifier is
reproduced from the development set, its grouped cross-validation holds the floors pinned in
`fixtures/labelled/baseline.json`, and editing the set trips the gate."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from tests.conftest import PROJECT

SET = PROJECT / "fixtures" / "labelled"


def test_training_reproduces_the_shipped_classifier_and_holds_the_floors(tmp_path):
    pytest.importorskip("sklearn", reason="the `train` extra (scikit-learn) is not installed")
    from harvester.app.train import load_set, set_digest, train
    from harvester.config.classifier import SHIPPED_SHA256, packaged_classifier_path

    baseline = json.loads((SET / "baseline.json").read_text(encoding="utf-8"))
    assert set_digest(load_set(SET)) == baseline["set_sha256"], \
        "fixtures/labelled changed: retrain (ccqm train), re-pin (python bench/score_eval.py --pin) and say why"
    report, _ = train(SET, tmp_path / "classifier.json.gz")
    shipped = packaged_classifier_path()
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == SHIPPED_SHA256, "the shipped file is not the pinned one"
    _assert_same_model(_read(tmp_path / "classifier.json.gz"), _read(shipped))
    figures = {"macro_f1": report.macro_f1, **{n: m["f1"] for n, m in report.per_criterion.items()}}
    for key, floor in baseline["floors"].items():
        assert figures[key] >= floor - baseline["margin"], f"{key} fell to {figures[key]} (floor {floor})"


# Weights are stored to 5 decimals. The solver stops at a tolerance, and another machine (its CPU,
# its numpy and scipy) takes a slightly different path there: 2026.12-32, trained on one machine
# and retrained on another of the same kind, differed by up to 0.00012 in 9,718 of its progress_shared
# weights. A retrained model is the shipped one when its version, vocabulary, idf, threshold,
# training set and cross-validation are the same and no weight differs by more than this (a changed
# excerpt or label already changes the training set's digest).
WEIGHT_TOLERANCE = 1e-3


def _read(path) -> dict:
    return json.loads(gzip.decompress(path.read_bytes()))


def _assert_same_model(retrained: dict, shipped: dict) -> None:
    """The shipped artefact is what training on the set gives: retrain (ccqm train) and re-pin when not."""
    stale = "the shipped classifier is stale: retrain (ccqm train), re-pin its SHA-256 and say why"
    for key in ("version", "threshold", "terms", "idf", "trained_on"):
        assert retrained[key] == shipped[key], f"{key}: {stale}"
    assert abs(retrained["cv"]["macro_f1"] - shipped["cv"]["macro_f1"]) <= 0.002, f"cv: {stale}"
    assert retrained["criteria"].keys() == shipped["criteria"].keys(), stale
    for name, mine in retrained["criteria"].items():
        theirs = shipped["criteria"][name]
        drift = max(abs(a - b) for a, b in zip(mine["weights"] + [mine["bias"]], theirs["weights"] + [theirs["bias"]]))
        assert len(mine["weights"]) == len(theirs["weights"]) and drift <= WEIGHT_TOLERANCE, f"{name}: {stale}"


def test_a_retrained_model_that_differs_beyond_the_solvers_tolerance_is_stale():
    shipped = _read(PROJECT / "harvester" / "config" / "classifier.json.gz")
    nudged = json.loads(json.dumps(shipped))
    nudged["criteria"]["goals_set"]["weights"][0] += WEIGHT_TOLERANCE / 2
    _assert_same_model(nudged, shipped)  # within where another machine's solver may stop
    nudged["criteria"]["goals_set"]["weights"][0] += WEIGHT_TOLERANCE
    with pytest.raises(AssertionError, match="goals_set"):
        _assert_same_model(nudged, shipped)


def test_the_set_is_what_its_readme_promises():
    from harvester.app.train import load_set
    from scoring import CRITERIA

    excerpts = load_set(SET)
    assert len(excerpts) >= 1000
    for name in CRITERIA:
        assert sum(name in e.labels for e in excerpts) >= 150, name
    negatives = [e for e in excerpts if not e.labels]
    assert len(negatives) >= 300
    assert sum(e.negative not in ("noise", None) for e in negatives) >= 100  # hard negatives
    for e in excerpts:
        assert e.url.startswith(("http://", "https://")) and e.org_kind
        assert set(e.evidence) == set(e.labels), e.id
        text = e.text.lower() + e.url.lower()
        assert "ccqm" not in text and "cultural cohesion" not in text and ".leeds." not in e.url, e.id
    second = [json.loads(line) for line in (SET / "second_pass.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(second) >= 200 and len({s["id"] for s in second}) == len(second)
    assert {s["id"] for s in second} <= {e.id for e in excerpts} | _all_ids()


def _all_ids() -> set[str]:
    ids = set()
    for path in (SET / "raw").glob("*.jsonl"):
        ids |= {json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    return ids


def test_held_out_batches_are_scored_by_a_model_that_never_saw_them():
    pytest.importorskip("sklearn", reason="the `train` extra (scikit-learn) is not installed")
    from harvester.app.train import batch_of, held_out, load_set
    from harvester.errors import UsageError
    from scoring import CRITERIA

    excerpts = [e for e in load_set(SET) if batch_of(e) in {"b01", "b02", "b03", "b10"}]
    report, scored, scores = held_out(excerpts, {"b10"}, threshold=0.5)
    b10 = [e for e in excerpts if batch_of(e) == "b10"]
    assert (report.excerpts, report.pages) == (len(b10), len({e.url for e in b10}))
    assert scored == b10 and len(scores) == len(b10) and all(set(s) == set(CRITERIA) for s in scores)
    assert 0.2 < report.macro_f1 < 0.95  # learned something, and not from the answers
    with pytest.raises(UsageError, match="b99"):
        held_out(excerpts, {"b99"}, threshold=0.5)


def test_the_shipped_model_is_measured_on_every_batch_labelled_after_it(tmp_path):
    pytest.importorskip("sklearn", reason="the `train` extra (scikit-learn) is not installed")
    import importlib.util

    from harvester.app.train import batch_of, fit, load_set, write_artefact

    spec = importlib.util.spec_from_file_location("score_eval", PROJECT / "bench" / "score_eval.py")
    score_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score_eval)
    excerpts = [e for e in load_set(SET) if batch_of(e) in {"b01", "b02", "b10"}]
    path = tmp_path / "classifier.json.gz"
    write_artefact(fit([e for e in excerpts if batch_of(e) != "b10"]), path)
    later = score_eval.shipped_on_unseen(excerpts, 0.5, path)
    b10 = [e for e in excerpts if batch_of(e) == "b10"]
    assert "labelled after it (b10)" in later and f"{len(b10)} excerpts" in later and "macro-F1" in later
    write_artefact(fit(excerpts), path)
    assert "has read every batch" in score_eval.shipped_on_unseen(excerpts, 0.5, path)


def test_the_shipped_classifier_reads_off_topic_site_text_as_evidence_no_more_than_pinned():
    """Everyday text of real sites off the scheme's topic (sport, fundraising, net zero, bins),
    written in the words of doing, asking and improving, kept out of the training: a new model or
    rubric that reads more of it as evidence than the pinned ceiling fails here. Its excerpts are
    real and labelled like the set's, and the few on the topic among them must still be found."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("score_eval", PROJECT / "bench" / "score_eval.py")
    score_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score_eval)
    baseline = json.loads((SET / "baseline.json").read_text(encoding="utf-8"))
    share, line = score_eval.off_topic_reading()
    assert share is not None, line
    assert share <= baseline["off_topic_labelled"] + baseline["margin"], line
    recall = int(line.rsplit("; ", 1)[1].split("%")[0])
    assert recall >= 50, line  # not bought by labelling nothing


def test_the_bands_of_score_say_how_often_a_score_so_high_was_evidence():
    """Bands above the threshold, each with the share of held-out criteria scored in it that the
    labels bear out; a score of exactly 1 falls in the last band, one below the threshold in none."""
    from harvester.app.train import Excerpt, bands

    excerpts = [Excerpt(id=f"b01-{n}", url=f"https://x.example/{n}", org_kind="school", text="t", labels=labels)
                for n, labels in enumerate([frozenset({"goals_set"}), frozenset(), frozenset({"goals_set"})])]
    held = [{"goals_set": 0.55, "actions_taken": 0.2}, {"goals_set": 0.58, "actions_taken": 1.0},
            {"goals_set": 0.95, "actions_taken": 0.4}]
    found = {(b["from"], b["to"]): (b["evidence"], b["items"]) for b in bands(excerpts, held, step=0.25)}
    assert found == {(0.5, 0.75): (0.5, 2), (0.75, 1.0): (0.5, 2)}


def test_the_threshold_is_the_highest_line_within_the_noise_of_the_best():
    """Lines whose cross-validated macro-F1 differ by less than the noise are a tie, and the higher
    one wins (fewer false labels before a validator); a line clearly better wins outright."""
    from harvester.app.train import THRESHOLD_NOISE, Report, chosen

    def report(t: float, f1: float) -> Report:
        return Report(threshold=t, per_criterion={"goals_set": {"f1": f1}}, excerpts=1, pages=1)

    near = [report(0.45, 0.630), report(0.50, 0.641), report(0.55, 0.641 - THRESHOLD_NOISE / 2), report(0.60, 0.633)]
    assert chosen(near).threshold == 0.55
    clear = [report(0.45, 0.630), report(0.50, 0.641), report(0.55, 0.641 - 2 * THRESHOLD_NOISE)]
    assert chosen(clear).threshold == 0.50


def test_an_excerpt_cannot_be_both_evidence_and_off_the_topic(tmp_path):
    """`off_topic` marks text that evidences nothing because it is off the scheme's topic (it teaches
    the topic gate); on an excerpt with labels it is a labelling mistake, named with its line."""
    from harvester.app.train import load_set
    from harvester.errors import InputError

    (tmp_path / "raw").mkdir()
    good = {"id": "b01-001", "url": "https://a.example/", "org_kind": "school", "text": "We won the cup.",
            "labels": [], "evidence": {}, "negative": "other", "off_topic": True}
    bad = dict(good, id="b01-002", text="We held a Diwali assembly.", labels=["actions_taken"],
               evidence={"actions_taken": ["We held a Diwali assembly."]}, negative=None)
    (tmp_path / "raw" / "b01.jsonl").write_text(json.dumps(good) + "\n", encoding="utf-8")
    [excerpt] = load_set(tmp_path)
    assert excerpt.off_topic and excerpt.on_topic is False
    (tmp_path / "raw" / "b01.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="off_topic") as caught:
        load_set(tmp_path)
    assert "b01.jsonl" in str(caught.value) and "2" in str(caught.value)


def test_a_text_repeated_across_batches_keeps_the_earlier_batchs_labels(tmp_path):
    """Batches are read in the order they were labelled (b9, b10, b100, then bx1), not as their names
    sort as text (b10, b100, b9): a text labelled again later counts once, with its first labels."""
    from harvester.app.train import load_set

    (tmp_path / "raw").mkdir()
    text = "We asked 120 pupils about belonging: 81% said they feel their culture is respected."
    for batch, labels in (("b9", ["quiz_outcomes"]), ("b10", []), ("b100", ["actions_taken"])):
        row = {"id": f"{batch}-001", "url": f"https://{batch}.example/", "org_kind": "school", "text": text,
               "labels": labels, "evidence": {name: [text] for name in labels},
               "negative": None if labels else "other"}
        other = dict(row, id=f"{batch}-002", text=f"Page {batch} of the newsletter.", labels=[], evidence={},
                     negative="noise")
        (tmp_path / "raw" / f"{batch}.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(other) + "\n",
                                                         encoding="utf-8")
    excerpts = load_set(tmp_path)
    [repeated] = [e for e in excerpts if e.text == text]
    assert repeated.id == "b9-001" and repeated.labels == {"quiz_outcomes"}
    assert [e.id for e in excerpts] == ["b9-001", "b9-002", "b10-002", "b100-002"]

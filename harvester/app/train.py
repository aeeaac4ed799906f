"""`ccqm train`: fit the classifier on the development set, report grouped cross-validation, write
the artefact. Deterministic: the same set gives the same artefact, byte for byte, on one machine
(another CPU's floating point may round the last stored digit of a few weights the other way).

The development set (`fixtures/labelled/raw/*.jsonl`) is real text of UK organisations, labelled by
hand (see its README). Excerpts repeated word for word across batches count once (the first
wins). Folds are split by source page, never by excerpt, so no page is both learned from and
judged. The decision threshold is the highest whose macro-F1 on the folds' held-out predictions
is within THRESHOLD_NOISE of the best. scikit-learn does the fitting (the `train` extra); features
come from `scoring.features`, the same code that scores, so training and scoring cannot drift apart.

`ccqm train --decisions` also learns from the validators' include and exclude decisions stored in
the database (`decision_excerpts`: an include, the passage the classifier reads for the criterion;
an exclude, every passage of the item; each labelled for the decided criteria alone and counting
as DECISION_WEIGHT excerpts), so the model learns the council's judgement on the very
organisations it scores.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from harvester.errors import InputError, UsageError
from scoring import CRITERIA
from scoring.features import terms
from scoring.learned import TextModel, judge, model_from_dict, sentences, windows

if TYPE_CHECKING:
    from harvester.config.settings import Settings

MODEL_VERSION = "2026.12-35"
WORD_MIN_DF, CHAR_MIN_DF, MAX_CHAR_TERMS = 2, 3, 60_000
C_REGULARISATION = 2.0
FOLDS = 5
THRESHOLDS = tuple(round(0.30 + 0.05 * i, 2) for i in range(9))  # 0.30 .. 0.70
# Two lines whose cross-validated macro-F1 differ by less than this are a tie, and the higher one
# wins: a false label costs a validator reading, and a higher line labels less of the everyday text
# of real sites. On 2026.12-28's set, 0.50 gave 0.6415 and 0.55 gave 0.6397, a difference whose
# standard deviation over pages drawn again (bootstrap, 60 draws) is 0.0015; 0.55 labels 15% of the
# off-topic excerpts against 19% at 0.50.
THRESHOLD_NOISE = 0.003
# The topic gate: a passage the topic model reads as on the scheme's topic with probability p below
# this keeps p / TOPIC_GATE of each criterion's probability (`scoring.learned`). Measured on off-topic
# site text held out by batch (`bench/score_eval.py`): with the off-topic batches, 0.5 halved what
# the model reads there as evidence (55% to 28%), at 0.004 to 0.007 of macro-F1 on the topic's own text.
# Grouped cross-validation gave 0.610 at 0.3, 0.613 at 0.5 and 0.614 at 0.7, which loses most on the
# topic's own excerpts (0.618 against 0.620).
TOPIC_GATE = 0.5
# What an unlabelled excerpt says about the topic: near misses on it (a values statement, national
# equality statistics) are on it; menus, dates and product pages, and what the set marks
# `off_topic`, are off it; "other" is either, so it teaches the topic nothing.
ON_TOPIC_NEGATIVES = frozenset({"values", "statistics", "future_event", "boilerplate", "edi_other"})
OFF_TOPIC_NEGATIVES = frozenset({"noise", "product"})
# A validator's include or exclude counts as this many excerpts of the set: it is a validator's
# reading of the scheme's own text, which the set (other organisations' text, labelled by
# assistants) only stands in for. Measured by `bench/decisions_eval.py` on the organisations still
# to come (the halves swapped second): +0.013 and +0.008 at 3 against +0.009 and +0.006 at 1, and
# no more at 5 or 10, on the set of 2026.12-24; +0.016 and +0.005 against +0.013 and +0.002 on 2026.12-25's.
DECISION_WEIGHT = 3.0


@dataclass(frozen=True)
class Excerpt:
    id: str
    url: str
    org_kind: str
    text: str
    labels: frozenset[str]
    evidence: dict = field(default_factory=dict, hash=False, compare=False)
    negative: str | None = None
    decided: frozenset[str] | None = None  # the criteria its labels speak for; None: all of them
    off_topic: bool = False  # evidences nothing because it is off the scheme's topic (sport, bins, net zero)

    def knows(self, criterion: str) -> bool:
        """Whether the excerpt says if it evidences `criterion` (a validator's decision speaks for one)."""
        return self.decided is None or criterion in self.decided

    @property
    def on_topic(self) -> bool | None:
        """Whether the excerpt is on the scheme's topic, for the topic gate; None when its labels
        do not say (a validator's decision on one criterion, an "other" near miss)."""
        if self.labels:
            return True
        if self.decided is not None:
            return None
        if self.off_topic or self.negative in OFF_TOPIC_NEGATIVES:
            return False
        return True if self.negative in ON_TOPIC_NEGATIVES else None


def _key(text: str) -> str:
    return " ".join(re.sub(r"\W+", " ", text.lower()).split())


def labelled_order(batch: str) -> list:
    """A batch's place in the order of labelling: b9 before b10 before b100."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", batch)]


def batch_files(folder: Path) -> list[Path]:
    """The set's batch files in the order they were labelled, so the first of two repeated texts is
    always the earlier batch's."""
    return sorted((folder / "raw").glob("*.jsonl"), key=lambda p: labelled_order(p.stem))


def load_set(folder: Path) -> list[Excerpt]:
    """The development set, checked line by line; exact repeats of a text count once."""
    files = batch_files(folder)
    if not files:
        raise UsageError(f"{folder / 'raw'}: no *.jsonl files: not a development set")
    seen: set[str] = set()
    out = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                labels = frozenset(r["labels"])
                text, url = r["text"], r["url"]
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"not an excerpt ({exc})", source=str(path), line=number) from None
            unknown = labels - set(CRITERIA)
            if unknown:
                raise InputError(f"unknown label {sorted(unknown)[0]!r}", source=str(path), line=number)
            for name, quotes in (r.get("evidence") or {}).items():
                if any(q not in text for q in quotes):
                    raise InputError(f"evidence for {name} is not in the text", source=str(path), line=number)
            if _key(text) in seen:
                continue
            seen.add(_key(text))
            if r.get("off_topic") and labels:
                raise InputError("an excerpt with labels cannot be off_topic", source=str(path), line=number)
            out.append(Excerpt(id=r["id"], url=url, org_kind=r.get("org_kind", ""), text=text, labels=labels,
                               evidence=r.get("evidence") or {}, negative=r.get("negative"),
                               off_topic=bool(r.get("off_topic"))))
    return out


def set_digest(excerpts: Iterable[Excerpt]) -> str:
    """SHA-256 of the set as trained on: editing an excerpt or a label changes it."""
    h = hashlib.sha256()
    for e in excerpts:
        row = [e.id, e.url, e.text, sorted(e.labels)] + ([] if e.decided is None else [sorted(e.decided)]) \
            + (["off_topic"] if e.off_topic else [])
        h.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def folds(excerpts: list[Excerpt], k: int = FOLDS) -> list[list[int]]:
    """Held-out indices of k folds, split by source page, pages dealt largest first (deterministic).
    The development set's pages are dealt before the validators' decided items, so its folds stay
    the same whatever has been decided."""
    pages: dict[str, list[int]] = {}
    for i, e in enumerate(excerpts):
        pages.setdefault(e.url, []).append(i)
    buckets: list[list[int]] = [[] for _ in range(k)]
    decided = {e.url for e in excerpts if e.decided is not None}
    for url in sorted(pages, key=lambda u: (u in decided, -len(pages[u]), hashlib.sha256(u.encode()).hexdigest())):
        min(buckets, key=len).extend(pages[url])
    return [sorted(b) for b in buckets]


def _vocabulary(texts: list[Counter]) -> tuple[list[str], list[float]]:
    df: Counter = Counter()
    for counts in texts:
        df.update(counts.keys())
    words = sorted(t for t, n in df.items() if t.startswith("w:") and n >= WORD_MIN_DF)
    chars = sorted((t for t, n in df.items() if t.startswith("c:") and n >= CHAR_MIN_DF), key=lambda t: (-df[t], t))
    vocab = words + sorted(chars[:MAX_CHAR_TERMS])
    n = len(texts)
    return vocab, [round(math.log((1 + n) / (1 + df[t])) + 1.0, 6) for t in vocab]


def tfidf_rows(counts: list[Counter], vocab: list[str], idf: list[float]):
    """(values, (rows, columns)) of the texts' tf-idf vectors, as `scoring.learned` computes one:
    sublinear term frequency times idf, words and character n-grams each L2-normalised."""
    import numpy as np

    index = {t: j for j, t in enumerate(vocab)}
    rows, cols, cnts = [], [], []
    for i, c in enumerate(counts):
        for term, n in c.items():
            j = index.get(term)
            if j is not None:
                rows.append(i)
                cols.append(j)
                cnts.append(n)
    rows_a, cols_a = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    vals = (1.0 + np.log(np.asarray(cnts, dtype=np.float64))) * np.asarray(idf)[cols_a]
    family = rows_a * 2 + np.asarray([not t.startswith("w:") for t in vocab], dtype=np.int64)[cols_a]
    norms = np.sqrt(np.bincount(family, weights=vals * vals, minlength=2 * len(counts)))
    vals /= np.where(norms > 0, norms, 1.0)[family]
    return vals, (rows_a, cols_a)


def weights(excerpts: list[Excerpt], rows: list[int]) -> list[float] | None:
    """Each row's weight in the fit: DECISION_WEIGHT for a validator's decision, 1 for the set's
    excerpts; None (all equal) when no decision is among them, so the set alone fits as it always has."""
    if not any(excerpts[i].decided is not None for i in rows):
        return None
    return [DECISION_WEIGHT if excerpts[i].decided is not None else 1.0 for i in rows]


def fit(excerpts: list[Excerpt], threshold: float = 0.5, version: str = MODEL_VERSION,
        counts: list[Counter] | None = None) -> dict:
    """The artefact (as a dict) of a model fitted on `excerpts` (whose `terms` may be given)."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    counts = counts if counts is not None else [terms(e.text) for e in excerpts]
    vocab, idf = _vocabulary(counts)
    x = csr_matrix(tfidf_rows(counts, vocab, idf), shape=(len(excerpts), len(vocab)))
    criteria = {}
    for name in CRITERIA:
        rows = [i for i, e in enumerate(excerpts) if e.knows(name)]
        y = [int(name in excerpts[i].labels) for i in rows]
        lr = LogisticRegression(C=C_REGULARISATION, class_weight="balanced", solver="liblinear", random_state=0)
        lr.fit(x if len(rows) == len(excerpts) else x[rows], y, sample_weight=weights(excerpts, rows))
        criteria[name] = {"weights": [round(float(w), 5) for w in lr.coef_[0]],
                          "bias": round(float(lr.intercept_[0]), 5)}
    topic = [(i, e.on_topic) for i, e in enumerate(excerpts) if e.on_topic is not None]
    gate = None
    if len({on for _, on in topic}) == 2:  # the set says what is off the topic: learn it
        lr = LogisticRegression(C=C_REGULARISATION, class_weight="balanced", solver="liblinear", random_state=0)
        rows = [i for i, _ in topic]
        lr.fit(x[rows], [int(on) for _, on in topic], sample_weight=weights(excerpts, rows))
        gate = {"weights": [round(float(w), 5) for w in lr.coef_[0]], "bias": round(float(lr.intercept_[0]), 5),
                "gate": TOPIC_GATE}
    trained_on = {"excerpts": len(excerpts), "sha256": set_digest(excerpts),
                  "batches": sorted({batch_of(e) for e in excerpts if e.decided is None}, key=labelled_order)}
    decided = len(decisions_in(excerpts))
    if decided:
        trained_on["decisions"] = decided
    return {"format": "ccqm-classifier", "v": 1, "version": version, "threshold": threshold,
            "terms": vocab, "idf": idf, "criteria": criteria, "trained_on": trained_on,
            **({"topic": gate} if gate else {})}


def as_model(artefact: dict) -> TextModel:
    return model_from_dict(artefact, digest="in-memory", criteria=CRITERIA)


@dataclass
class Report:
    """Grouped cross-validation figures, per criterion and overall."""

    threshold: float
    per_criterion: dict[str, dict[str, float]]  # name -> precision, recall, f1, support
    excerpts: int
    pages: int

    @property
    def macro_f1(self) -> float:
        return round(sum(m["f1"] for m in self.per_criterion.values()) / len(self.per_criterion), 4)

    def lines(self, heading: str = f"grouped {FOLDS}-fold cross-validation by source page") -> list[str]:
        out = [f"{heading}: {self.excerpts} excerpts, {self.pages} pages, threshold {self.threshold:.2f}",
               f"{'criterion':<17} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
        for name, m in self.per_criterion.items():
            out.append(f"{name:<17} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>8.0f}")
        out.append(f"{'macro-F1':<17} {'':>9} {'':>7} {self.macro_f1:>6.3f}")
        return out


def prf(truth: list[bool], guess: list[bool]) -> dict[str, float]:
    tp = sum(t and g for t, g in zip(truth, guess))
    fp = sum(g and not t for t, g in zip(truth, guess))
    fn = sum(t and not g for t, g in zip(truth, guess))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "support": float(tp + fn)}


def cross_validate(excerpts: list[Excerpt], progress: Callable[[str], None] = lambda m: None) -> tuple[Report, list[dict]]:
    """Held-out scores of every excerpt (each fold fitted without its pages) and the report at the
    highest threshold within THRESHOLD_NOISE of the best macro-F1."""
    held: list[dict] = [{} for _ in excerpts]
    counts = [terms(e.text) for e in excerpts]
    for n, test in enumerate(folds(excerpts), start=1):
        test_set = set(test)
        train_idx = [i for i in range(len(excerpts)) if i not in test_set]
        model = as_model(fit([excerpts[i] for i in train_idx], counts=[counts[i] for i in train_idx]))
        for i in test:
            held[i] = {name: j.score for name, j in judge(excerpts[i].text, model).items()}
        progress(f"fold {n}/{FOLDS} done")

    def report_at(t: float) -> Report:
        known = {name: [(e, h) for e, h in zip(excerpts, held) if e.knows(name)] for name in CRITERIA}
        per = {name: prf([name in e.labels for e, _ in pairs], [h[name] >= t for _, h in pairs])
               for name, pairs in known.items()}
        return Report(threshold=t, per_criterion=per, excerpts=len(excerpts), pages=len({e.url for e in excerpts}))

    return chosen([report_at(t) for t in THRESHOLDS]), held


def chosen(reports: list[Report]) -> Report:
    """The report at the highest threshold whose macro-F1 is within THRESHOLD_NOISE of the best: a
    tie goes to the line that puts fewer false labels before a validator."""
    best = max(r.macro_f1 for r in reports)
    return max((r for r in reports if r.macro_f1 >= best - THRESHOLD_NOISE), key=lambda r: r.threshold)


def bands(excerpts: list[Excerpt], held: list[dict], step: float = 0.1) -> list[dict]:
    """How often a criterion given a held-out score in each band above the threshold (0.5 to 1, by
    `step`; scores are scaled so that 0.5 is the threshold) was in the excerpt's labels: what a
    validator needs to weigh one cited item, since a score of 0.55 is right far less often than
    one of 0.95."""
    edges = [round(0.5 + step * i, 4) for i in range(round(0.5 / step) + 1)]
    out = []
    for low, high in zip(edges, edges[1:]):
        last = high >= 1.0
        hits = [name in e.labels for e, h in zip(excerpts, held) for name, score in h.items()
                if e.knows(name) and (low <= score < high or (last and score == high))]
        out.append({"from": low, "to": high, "evidence": round(sum(hits) / len(hits), 4) if hits else None,
                    "items": len(hits)})
    return out


def batch_of(excerpt: Excerpt) -> str:
    """The batch an excerpt was labelled in: its id's prefix ("b23-014" is of b23)."""
    return excerpt.id.split("-", 1)[0]


def held_out(excerpts: list[Excerpt], batches: set[str], threshold: float) -> tuple[Report, list[Excerpt], list[dict]]:
    """The excerpts of `batches` scored by one model fitted on every other batch (less any page the
    two share), at `threshold`: how the classifier does on themes and pages it never learned from,
    a harder and more honest figure than folds drawn across all batches. Also returns the excerpts
    scored and their scores."""
    test = [e for e in excerpts if batch_of(e) in batches]
    if not test:
        raise UsageError(f"no excerpts in batches {', '.join(sorted(batches))}")
    urls = {e.url for e in test}
    model = as_model(fit([e for e in excerpts if batch_of(e) not in batches and e.url not in urls]))
    scores = [{name: j.score for name, j in judge(e.text, model).items()} for e in test]
    return report_on(test, scores, threshold), test, scores


def report_on(excerpts: list[Excerpt], scores: list[dict], threshold: float) -> Report:
    """The figures of `excerpts` given their `scores` (one dict a criterion each) at `threshold`."""
    per = {name: prf([name in e.labels for e in excerpts], [s[name] >= threshold for s in scores]) for name in CRITERIA}
    return Report(threshold=threshold, per_criterion=per, excerpts=len(excerpts), pages=len({e.url for e in excerpts}))


def write_artefact(artefact: dict, path: Path) -> str:
    """Write the artefact deterministically (no timestamps in the gzip header); return its SHA-256."""
    data = json.dumps(artefact, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(packed)
    part.replace(path)  # whole or not at all: a scoring run may be reading the old one
    return hashlib.sha256(packed).hexdigest()


def decision_excerpts(item_id: str, url: str | None, org_kind: str, body: str, decided: dict[str, str],
                      model: TextModel) -> list[Excerpt]:
    """One item's standing decisions as training excerpts. A validator judges a whole item, but the
    classifier learns from passages and scores an item by its best one. An include says some passage
    evidences the criterion: the one `model` reads for it (the one it cited, or the nearest it came)
    is labelled so. An exclude says none does: every passage the classifier reads is a negative for
    it, or the next best passage, which shares most of its words, would carry the item again. Each
    passage speaks only for the criteria decided on it; criteria of one passage share one excerpt."""
    judged = judge(body, model)
    spans = sentences(body) or [(0, len(body))]
    every = [(spans[first][0], spans[last][1]) for first, last in windows(spans)]
    by_span: dict[tuple[int, int], list[str]] = {}
    for name in CRITERIA:
        if decided.get(name) == "include":
            by_span.setdefault(judged[name].span, []).append(name)
        elif decided.get(name) == "exclude":
            for span in every:
                by_span.setdefault(span, []).append(name)
    return [Excerpt(id=f"decision-{item_id}-{start}", url=url or item_id, org_kind=org_kind, text=body[start:end],
                    labels=frozenset(n for n in names if decided[n] == "include"), decided=frozenset(names))
            for (start, end), names in sorted(by_span.items()) if body[start:end].strip()]  # no words: nothing to learn


def decided_item(excerpt: Excerpt) -> str:
    """The item a validator's decision excerpt comes from (see `decision_excerpts`): an exclude gives
    one excerpt for each of its passages."""
    return excerpt.id.rsplit("-", 1)[0]


def decisions_in(excerpts: Iterable[Excerpt]) -> dict[tuple[str, str], bool]:
    """The validators' decisions the excerpts carry, one per item and criterion however many
    passages teach it: (item, criterion) -> whether it is an include."""
    return {(decided_item(e), name): name in e.labels for e in excerpts for name in e.decided or ()}


def decisions_agreed(excerpts: list[Excerpt], held: list[dict], threshold: float) -> list[bool]:
    """For each decision (one item, one criterion), whether the held-out scores agree with it: the
    item counts for the criterion, as scoring counts it, when any of its decided passages reaches
    the threshold."""
    counted: dict[tuple[str, str], bool] = {}
    for e, h in zip(excerpts, held):
        for name in e.decided or ():
            key = (decided_item(e), name)
            counted[key] = counted.get(key, False) or h[name] >= threshold
    return [included == counted[key] for key, included in decisions_in(excerpts).items()]


def validators_decisions(settings: "Settings") -> list[Excerpt]:
    """Every standing include and exclude in the database, as training excerpts (see
    `decision_excerpts`), organisations in registry order. The passages are those the packaged
    classifier reads, not the config folder's own, so training again on the same decisions gives
    the same model."""
    from harvester.app.assess import evidence_from_row
    from harvester.config.classifier import load_classifier, packaged_classifier_path
    from harvester.store.db import open_store
    from scoring import decisions

    model = load_classifier(packaged_classifier_path())
    out: list[Excerpt] = []
    with open_store(settings.db_path, read_only=True) as store:
        for org in settings.organisations:
            decided = decisions(store.overrides_for(org.id))
            for row in store.items_for(org.id, snapshots=False) if decided else ():
                if row["id"] in decided:
                    item = evidence_from_row(row)
                    out += decision_excerpts(item.id, item.url, org.kind, item.body, decided[item.id], model)
    return out


def train(folder: Path, out: Path, progress: Callable[[str], None] = lambda m: None,
          decided: list[Excerpt] = ()) -> tuple[Report, str]:
    """Cross-validate, then fit on the whole set (and the validators' `decided` excerpts, if any)
    at the chosen threshold and write the artefact."""
    excerpts = load_set(folder)
    progress(f"{len(excerpts)} excerpts from {len({e.url for e in excerpts})} pages")
    if decided:
        items = len({decided_item(e) for e in decided})
        progress(f"and {len(decided)} passages of {items} items decided by validators")
        excerpts += decided
    report, held = cross_validate(excerpts, progress)
    if decided:
        judged = decisions_agreed(excerpts, held, report.threshold)
        progress(f"the cross-validated model agrees with {sum(judged)} of the validators' {len(judged)} decisions")
    artefact = fit(excerpts, threshold=report.threshold)
    artefact["cv"] = {"macro_f1": report.macro_f1, "threshold": report.threshold, "per_criterion": report.per_criterion,
                      "bands": bands(excerpts, held)}
    return report, write_artefact(artefact, out)

"""`ccqm train`: fit the classifier on the development set, report grouped cross-validation, write
the artefact. Deterministic: the same set gives the same artefact, byte for byte, on one machine
(another CPU's floating point may round the last stored digit of a few weights the other way).

The development set (`fixtures/labelled/raw/*.jsonl`) is real text of UK organisations, labelled by
hand (see its README). Excerpts repeated word for word across batches count once (the first
wins). Folds are split by source page, never by excerpt, so no page is both learned from and
judged. The decision threshold is the one that gives the best macro-F1 on the folds' held-out
predictions. scikit-learn does the fitting (the `train` extra); features come from
`scoring.features`, the same code that scores, so training and scoring cannot drift apart.
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
from typing import Callable, Iterable

from harvester.errors import InputError, UsageError
from scoring import CRITERIA
from scoring.features import terms
from scoring.learned import TextModel, judge, model_from_dict

MODEL_VERSION = "2026.12-8"
WORD_MIN_DF, CHAR_MIN_DF, MAX_CHAR_TERMS = 2, 3, 60_000
C_REGULARISATION = 2.0
FOLDS = 5
THRESHOLDS = tuple(round(0.30 + 0.05 * i, 2) for i in range(9))  # 0.30 .. 0.70


@dataclass(frozen=True)
class Excerpt:
    id: str
    url: str
    org_kind: str
    text: str
    labels: frozenset[str]
    evidence: dict = field(default_factory=dict, hash=False, compare=False)
    negative: str | None = None


def _key(text: str) -> str:
    return " ".join(re.sub(r"\W+", " ", text.lower()).split())


def load_set(folder: Path) -> list[Excerpt]:
    """The development set, checked line by line; exact repeats of a text count once."""
    files = sorted((folder / "raw").glob("*.jsonl"))
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
            out.append(Excerpt(id=r["id"], url=url, org_kind=r.get("org_kind", ""), text=text, labels=labels,
                               evidence=r.get("evidence") or {}, negative=r.get("negative")))
    return out


def set_digest(excerpts: Iterable[Excerpt]) -> str:
    """SHA-256 of the set as trained on: editing an excerpt or a label changes it."""
    h = hashlib.sha256()
    for e in excerpts:
        h.update(json.dumps([e.id, e.url, e.text, sorted(e.labels)], ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def folds(excerpts: list[Excerpt], k: int = FOLDS) -> list[list[int]]:
    """Held-out indices of k folds, split by source page, pages dealt largest first (deterministic)."""
    pages: dict[str, list[int]] = {}
    for i, e in enumerate(excerpts):
        pages.setdefault(e.url, []).append(i)
    buckets: list[list[int]] = [[] for _ in range(k)]
    for url in sorted(pages, key=lambda u: (-len(pages[u]), hashlib.sha256(u.encode()).hexdigest())):
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
        y = [int(name in e.labels) for e in excerpts]
        lr = LogisticRegression(C=C_REGULARISATION, class_weight="balanced", solver="liblinear", random_state=0)
        lr.fit(x, y)
        criteria[name] = {"weights": [round(float(w), 5) for w in lr.coef_[0]],
                          "bias": round(float(lr.intercept_[0]), 5)}
    return {"format": "ccqm-classifier", "v": 1, "version": version, "threshold": threshold,
            "terms": vocab, "idf": idf, "criteria": criteria,
            "trained_on": {"excerpts": len(excerpts), "sha256": set_digest(excerpts)}}


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
    threshold with the best macro-F1."""
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
        per = {name: prf([name in e.labels for e in excerpts], [h[name] >= t for h in held]) for name in CRITERIA}
        return Report(threshold=t, per_criterion=per, excerpts=len(excerpts), pages=len({e.url for e in excerpts}))

    return max((report_at(t) for t in THRESHOLDS), key=lambda r: (r.macro_f1, -abs(r.threshold - 0.5))), held


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
                if low <= score < high or (last and score == high)]
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
    per = {name: prf([name in e.labels for e in test], [s[name] >= threshold for s in scores]) for name in CRITERIA}
    return Report(threshold=threshold, per_criterion=per, excerpts=len(test), pages=len(urls)), test, scores


def write_artefact(artefact: dict, path: Path) -> str:
    """Write the artefact deterministically (no timestamps in the gzip header); return its SHA-256."""
    data = json.dumps(artefact, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(packed)
    return hashlib.sha256(packed).hexdigest()


def train(folder: Path, out: Path, progress: Callable[[str], None] = lambda m: None) -> tuple[Report, str]:
    """Cross-validate, then fit on the whole set at the chosen threshold and write the artefact."""
    excerpts = load_set(folder)
    progress(f"{len(excerpts)} excerpts from {len({e.url for e in excerpts})} pages")
    report, held = cross_validate(excerpts, progress)
    artefact = fit(excerpts, threshold=report.threshold)
    artefact["cv"] = {"macro_f1": report.macro_f1, "threshold": report.threshold, "per_criterion": report.per_criterion,
                      "bands": bands(excerpts, held)}
    return report, write_artefact(artefact, out)

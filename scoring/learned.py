"""The learned classifier: TF-IDF features and one logistic regression per criterion, applied to
passages of a text so that every label cites the passage that carried it.

Why this model: by grouped cross-validation on the development set (`fixtures/labelled/`, real
text of UK organisations) it beat the rubric's patterns, static word embeddings and a frozen
MiniLM encoder, each through the same regression, at a fraction of their cost (the figures are in
the README and `bench/score_eval.py`). It is data, not code: `ccqm train` writes the artefact,
the application loads it and passes it in. Nothing here reads a file.

A text is cut into sentences and read in windows of consecutive sentences (about the length of
the excerpts it learned from), so a long page is judged by its best passage, not diluted by its
menus and footers. A criterion's score is its best window's probability, rescaled so that the
model's decision threshold sits at 0.5; the explanation is that window and the terms that
weighed most in it. A second regression on the same features, when the artefact has one, reads
whether a window is on the scheme's topic at all: one it reads as off the topic keeps only part of
each criterion's probability (`TextModel.gate`), and the judgement says how much.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

from scoring.features import WORD, char_terms, cues_each, normalise_each, readable

SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n\s*")
WINDOW_CHARS = 600  # about the length of the passages the model learned from
MAX_WINDOWS = 400  # a very long text is read in its first 400 windows
CITE_SHARE = 0.5  # a sentence is cited when it carries this share of what the strongest one does


class ModelError(ValueError):
    """A model artefact that cannot be used; `field` names what is wrong in it."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, eq=False)
class TextModel:
    version: str  # e.g. "2026.11-1"
    digest: str  # SHA-256 of the artefact it was loaded from: part of every cache key
    index: dict[str, int]
    terms: tuple[str, ...]
    idf: tuple[float, ...]
    names: tuple[str, ...]  # the criteria, in the order of the weights' columns
    weights: np.ndarray  # (terms, criteria), and a last column for the topic when `gate` is set
    bias: np.ndarray  # (criteria,), and the topic's
    threshold: float  # the probability at which a criterion is labelled
    bands: tuple[tuple[float, float, float], ...] = ()  # (from, to, share that was evidence), in cross-validation
    gate: float = 0.0  # a passage on the topic with probability p < gate keeps p / gate of its scores; 0: no gate

    def __post_init__(self) -> None:
        object.__setattr__(self, "idf_array", np.asarray(self.idf, dtype=np.float64))
        object.__setattr__(self, "is_word", np.asarray([t.startswith("w:") for t in self.terms], dtype=bool))
        object.__setattr__(self, "token_columns", _TokenColumns(self.index))  # token -> its character n-grams' columns
        words = [(t[2:], j) for j, t in enumerate(self.terms) if t.startswith("w:")]
        # the word features by the words themselves (a unigram) or a pair of them (a bigram), so that
        # reading a text looks each up without building its name (see `features.word_terms`)
        object.__setattr__(self, "word_columns", {w: j for w, j in words if " " not in w})
        object.__setattr__(self, "pair_columns", {tuple(w.split(" ")): j for w, j in words if w.count(" ") == 1})

    @property
    def key(self) -> str:
        return f"{self.version}:{self.digest[:12]}"

    def evidence_share(self, score: float) -> float | None:
        """How often, in the training's cross-validation, a criterion scored like this was really
        evidenced (None below the threshold, or when the artefact has no such figures)."""
        for low, high, share in self.bands:
            if low <= score < high or score == high == self.bands[-1][1]:
                return share
        return None


@dataclass(frozen=True)
class Judgement:
    """One criterion's verdict on one text."""

    score: float  # in [0, 1]; 0.5 is the decision threshold
    span: tuple[int, int]  # the passage that carried it, as offsets into the text
    terms: tuple[str, ...]  # what weighed most in that passage
    sentences: tuple[tuple[int, int], ...] = ()  # the sentence(s) of the passage that weighed most
    topic: float = 1.0  # what the topic gate left of the score: below 1 when the passage reads as off the topic


def model_from_dict(data: dict, digest: str, criteria: tuple[str, ...]) -> TextModel:
    """Check and build a model from its artefact's parsed JSON."""
    if not isinstance(data, dict) or data.get("format") != "ccqm-classifier":
        raise ModelError("format", "not a ccqm classifier artefact")
    if data.get("v") != 1:
        raise ModelError("v", f"artefact version {data.get('v')!r} is not one this ccqm reads (1)")
    vocab, idf = data.get("terms"), data.get("idf")
    if not isinstance(vocab, list) or not isinstance(idf, list) or len(vocab) != len(idf) or not vocab:
        raise ModelError("terms", "terms and idf must be lists of the same, non-zero length")
    threshold = data.get("threshold")
    if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ModelError("threshold", f"must be between 0 and 1, got {threshold!r}")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise ModelError("version", "a version string is required")
    cv = data.get("cv")
    bands = _bands(cv.get("bands", []) if isinstance(cv, dict) else [])
    columns, biases = [], []
    entries = [(f"criteria.{name}", (data.get("criteria") or {}).get(name)) for name in criteria]
    topic = data.get("topic")
    if topic is not None:
        if not isinstance(topic, dict) or not isinstance(topic.get("gate"), (int, float)) or not 0 < topic["gate"] <= 1:
            raise ModelError("topic.gate", "must be a number above 0 and at most 1")
        entries.append(("topic", topic))
    for field, entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("weights"), list) \
                or len(entry["weights"]) != len(vocab) or not isinstance(entry.get("bias"), (int, float)):
            raise ModelError(field, f"needs {len(vocab)} weights and a bias")
        columns.append(entry["weights"])
        biases.append(float(entry["bias"]))
    return TextModel(version=version, digest=digest, index={t: j for j, t in enumerate(vocab)},
                     terms=tuple(vocab), idf=tuple(float(x) for x in idf), names=tuple(criteria),
                     weights=np.asarray(columns, dtype=np.float32).T.copy(), bias=np.asarray(biases, dtype=np.float64),
                     threshold=float(threshold), bands=bands, gate=float(topic["gate"]) if topic else 0.0)


def _bands(raw) -> tuple[tuple[float, float, float], ...]:
    """The artefact's `cv.bands`, checked: each band's bounds and share of evidence."""
    if not isinstance(raw, list):
        raise ModelError("cv.bands", "must be a list of bands")
    out = []
    for n, band in enumerate(raw):
        if isinstance(band, dict) and "evidence" in band and band["evidence"] is None:
            continue  # no held-out score fell in it: nothing to say
        values = [band.get(k) for k in ("from", "to", "evidence")] if isinstance(band, dict) else []
        if not (len(values) == 3 and all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in values)
                and values[0] < values[1]):
            raise ModelError(f"cv.bands[{n}]", "needs from < to and a share of evidence, each between 0 and 1")
        out.append((float(values[0]), float(values[1]), float(values[2])))
    return tuple(out)


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line of `text`."""
    spans, pos = [], 0
    for match in SENTENCE_END.finditer(text):
        if text[pos:match.start()].strip():
            spans.append((pos, match.start()))
        pos = match.end()
    if text[pos:].strip():
        spans.append((pos, len(text)))
    return spans


def windows(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Runs of consecutive sentences (first, last index) up to about WINDOW_CHARS, overlapping by
    half: each starts at the sentence in the middle of the one before, so no passage is cut in two
    unseen."""
    out, i = [], 0
    while i < len(spans) and len(out) < MAX_WINDOWS:
        start, j = spans[i][0], i
        while j + 1 < len(spans) and spans[j + 1][1] - start <= WINDOW_CHARS:
            j += 1
        out.append((i, j))
        if j == len(spans) - 1:
            break  # later windows would only be tails of this one
        i = max(i + 1, (i + j + 1) // 2)
    return out


def _scale(p: float, threshold: float) -> float:
    """The probability rescaled so that the threshold sits at 0.5."""
    if p < threshold:
        return 0.5 * p / threshold
    return 0.5 + 0.5 * (p - threshold) / (1.0 - threshold)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


def _gate(z_topic: float, gate: float) -> float:
    """The share of its scores a passage keeps: all of them on the topic, p / gate when the topic
    model gives it a probability p below the gate (and all of them when there is no gate)."""
    return min(1.0, _sigmoid(z_topic) / gate) if gate else 1.0


def _choices(logits: np.ndarray, model: TextModel) -> np.ndarray:
    """Each criterion's best passage: by its logit, or with a gate by the log of its probability
    times the passage's gate share (logs, so that no probability rounds to 1 and ties)."""
    k = len(model.names)
    if not model.gate:
        return logits[:, :k].argmax(axis=0)
    log_p = -np.logaddexp(0.0, -logits[:, :k])
    log_share = np.minimum(0.0, -np.logaddexp(0.0, -logits[:, k]) - math.log(model.gate))
    return (log_p + log_share[:, None]).argmax(axis=0)


class _TokenColumns(dict):
    """A token's known character n-grams (as columns), each token worked out once: a site's pages
    share most of their words. Stops remembering new tokens at 200,000."""

    def __init__(self, index: dict[str, int]):
        super().__init__()
        self.index = index

    def __missing__(self, token: str) -> tuple[int, ...]:
        found = tuple(self.index[g] for g in char_terms(token) if g in self.index)
        if len(self) < 200_000:
            self[token] = found
        return found


def _features(pieces: list[str], model: TextModel) -> tuple[np.ndarray, np.ndarray]:
    """The pieces' known features (`features.terms`, as columns, one entry per occurrence), piece
    after piece in one array, and where each piece begins and ends in it (`bounds`, one more than
    the pieces). One array for the page, not one a sentence: numpy's cost is in the calls."""
    norms = normalise_each(pieces)
    words_of, pairs_of, index_of = model.word_columns.get, model.pair_columns.get, model.index.get
    chars_of = model.token_columns.__getitem__
    columns: list[int] = []  # -1 for a word, pair of words or cue the model does not know
    bounds = [0]
    for norm, cues in zip(norms, cues_each(norms)):
        words = WORD.findall(norm)
        columns += map(words_of, words, repeat(-1))
        columns += map(pairs_of, zip(words, words[1:]), repeat(-1))
        columns += map(index_of, cues, repeat(-1))
        columns += chain.from_iterable(map(chars_of, norm.split()))
        bounds.append(len(columns))
    found = np.asarray(columns, dtype=np.int64)
    known = found >= 0
    return found[known], np.concatenate([[0], np.cumsum(known)])[bounds]


def _vector(occurrences: np.ndarray, model: TextModel) -> tuple[np.ndarray, np.ndarray]:
    """A passage's tf-idf vector, as `features.weigh` computes it, from its features' occurrences."""
    if not len(occurrences):
        return occurrences, np.zeros(0)
    idx, counts = np.unique(occurrences, return_counts=True)
    cnt = counts.astype(np.float64)
    vals = (1.0 + np.log(cnt)) * model.idf_array[idx]
    words = model.is_word[idx]
    for family in (words, ~words):
        norm = math.sqrt(float(vals[family] @ vals[family])) or 1.0
        vals[family] /= norm
    return idx, vals


def _logits(passages: list[tuple[int, int]], occurrences: np.ndarray, bounds: np.ndarray,
            model: TextModel) -> np.ndarray:
    """Every passage's logit for every criterion (passages x criteria), as `_vector` and the
    weights give them, computed for all passages at once: a page has dozens of them, and numpy's
    cost is in the calls, not the arithmetic."""
    spans = [(bounds[first], bounds[last + 1]) for first, last in passages]
    rows = np.repeat(np.arange(len(passages)), [end - start for start, end in spans])
    columns = np.concatenate([occurrences[start:end] for start, end in spans])
    keys, counts = np.unique(rows * len(model.terms) + columns, return_counts=True)
    row, idx = np.divmod(keys, len(model.terms))  # sorted by passage, then by feature
    starts = np.flatnonzero(np.diff(row, prepend=-1))  # where each passage (that has features) begins
    position = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(row))))
    vals = (1.0 + np.log(counts)) * model.idf_array[idx]
    family = (~model.is_word[idx]).astype(np.int64)  # 0 words, 1 characters: each normalised on its own
    squares = np.zeros((len(vals), 2))
    squares[np.arange(len(vals)), family] = vals * vals
    norms = np.sqrt(np.add.reduceat(squares, starts)) if len(vals) else squares
    vals /= np.where(norms > 0, norms, 1.0)[position, family]
    logits = np.tile(model.bias, (len(passages), 1))
    if len(vals):
        logits[row[starts]] += np.add.reduceat(vals[:, None] * model.weights[idx], starts)
    return logits


def _carriers(occurrences: np.ndarray, lengths: np.ndarray, idx: np.ndarray, vals: np.ndarray,
              weights: np.ndarray) -> list[list[int]]:
    """Which sentences of a passage carried each criterion's score (their positions in the passage;
    `occurrences` are its features, sentence after sentence, `lengths` how many each sentence has;
    `weights` has one column per criterion): each term's share of a score is split between the
    sentences it occurs in, and a sentence is cited when it carries CITE_SHARE of what the
    strongest one does. The strongest is always cited."""
    if not len(idx):
        return [[0] for _ in range(weights.shape[1])]
    positions = np.searchsorted(idx, occurrences)
    share = vals[:, None] * weights / np.bincount(positions, minlength=len(idx))[:, None]
    carried = np.zeros((len(lengths), weights.shape[1]))  # sentence x criterion
    filled = lengths > 0
    carried[filled] = np.add.reduceat(share[positions], (np.cumsum(lengths) - lengths)[filled], axis=0)
    out = []
    for column in carried.T:
        top = float(column.max())
        out.append([int(column.argmax())] if top <= 0 else np.flatnonzero(column >= CITE_SHARE * top).tolist())
    return out


def judge(text: str, model: TextModel) -> dict[str, Judgement]:
    """Every criterion's score for `text`, with the passage, sentences and terms that carried it."""
    spans = sentences(text) or [(0, len(text))]
    occurrences, bounds = _features([text[s:e] for s, e in spans], model)
    passages = windows(spans)
    best_p, shares = np.zeros(len(model.names)), np.ones(len(model.names))
    best: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # (first sentence, last sentence, terms, values)
    found: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for c, w in enumerate(_choices(_logits(passages, occurrences, bounds, model), model)):  # each criterion's best passage
        first, last = passages[w]
        if (first, last) not in found:  # its score as the training computed it, to the last bit
            idx, vals = _vector(occurrences[bounds[first]:bounds[last + 1]], model)
            found[first, last] = (idx, vals, model.bias + (vals @ model.weights[idx] if len(idx) else 0.0))
        idx, vals, z = found[first, last]
        shares[c] = _gate(float(z[-1]), model.gate)
        best_p[c] = _sigmoid(float(z[c])) * shares[c]
        best.append((first, last, idx, vals))
    cited: dict[int, list[int]] = {}  # criterion -> its cited sentences, each best window read once
    for window in {best[c][:2] for c in range(len(model.names))}:
        criteria = [c for c in range(len(model.names)) if best[c][:2] == window]
        _, _, idx, vals = best[criteria[0]]
        first, last = window
        carriers = _carriers(occurrences[bounds[first]:bounds[last + 1]], np.diff(bounds[first:last + 2]), idx, vals,
                             model.weights[np.ix_(idx, criteria)])
        cited.update(zip(criteria, carriers))
    out = {}
    for c, name in enumerate(model.names):
        first, last, idx, vals = best[c]
        contribution = vals * model.weights[idx, c]
        keep = model.is_word[idx] & (contribution > 0)
        order = np.argsort(-contribution[keep], kind="stable")[:5]
        words = tuple(readable(model.terms[j][2:]) for j in idx[keep][order])
        out[name] = Judgement(score=round(_scale(float(best_p[c]), model.threshold), 4),
                              span=(spans[first][0], spans[last][1]), terms=words,
                              sentences=tuple(spans[first + k] for k in cited[c]), topic=round(float(shares[c]), 4))
    return out

"""Text to sparse features, the same way at training and at scoring time: pure, no numpy.

Two families, each TF-IDF weighted (sublinear term frequency) and L2-normalised on its own
(`scoring.learned` for one text, `harvester.app.train` for the training set):
word unigrams and bigrams (`w:`), and character 5-grams inside word boundaries (`c:`),
which carry morphology ("survey", "surveyed", "surveys") and survive odd spellings. Numbers are
folded to shapes (`0%`, `yyyy`, `0`), so that "64% of parents" and "71% of parents" are one
pattern and the model learns the shape of a result, not its value.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from functools import lru_cache
from itertools import accumulate, chain

WORD = re.compile(r"(?u)\b\w\w+\b|%")
PERCENT = re.compile(r"\d+(?:[.,]\d+)?\s?(?:%|per ?cent\b)", re.IGNORECASE)
YEAR = re.compile(r"\b(?:19|20)\d\d\b")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
CHAR_SIZES = (5,)  # 3- to 5-grams: no better (grouped CV 0.634, 4- and 5-grams 0.635, 5-grams 0.637), and slower
JOIN = "\x00"  # joins texts normalised together: never in a normalised text, matched by no pattern here


def _fold(text: str) -> str:
    text = text.lower()
    if not text.isascii():
        text = COMBINING.sub("", unicodedata.normalize("NFKD", text))
    text = PERCENT.sub(" pctnum ", text)
    text = YEAR.sub(" yearnum ", text)
    text = NUMBER.sub(" num ", text)
    return " ".join(text.split())  # white space collapsed (as `\s+` to one space, and stripped), in a third of the time


def normalise(text: str) -> str:
    """Lower case, accents stripped, numbers folded to their shape, white space collapsed."""
    return _fold(text.replace(JOIN, " ")).strip()


def normalise_each(texts: list[str]) -> list[str]:
    """`normalise` of each text, in one pass over them joined: a page is read as a hundred
    sentences, and a pass each costs more than the folding itself."""
    joined = _fold(JOIN.join(text.replace(JOIN, " ") for text in texts))
    return [part.strip() for part in joined.split(JOIN)]


# Cues: the shapes of language each criterion is written in, as one feature each, so that what the
# set teaches about "64% of parents said" carries to "71% of staff agreed" and to wordings it never
# saw. Matched on normalised text (numbers already folded).
CUES = {
    "~asked": r"\b(surveys?|surveyed|questionnaires?|polls?|quiz(zes)?|consultations?|focus groups?|pupil voice|student voice|we asked|asked (our|all|every|num))\b",
    "~result": r"\b(pctnum|num (out )?of num|most|majority|half|num in num)\b( of)?( \w+){0,5} (said|say|says|felt|feel|feels|agreed|agree|agrees|reported|report|told|think|thought|rated|responded|would|were|are|felt)\b",
    "~future": r"\b(will|aims? to|plans? to|intends? to|we want to|commit(ted)? to|by (yearnum|the end of|july|march|september|december)|objectives?|targets?|next steps?)\b",
    "~did": r"\b(we|pupils|students|staff|children|colleagues|volunteers|the school|the trust) (have |has )?(held|celebrated|launched|introduced|trained|delivered|organised|ran|hosted|created|appointed|set up|took part|visited|welcomed|marked|developed|completed|implemented|established|worked)\b",
    "~change": r"\b(from pctnum to pctnum|up from|down from|rose|risen|increased|decreased|fell|fallen|compared (with|to)|than last year|since yearnum|narrowed|widened|improved|has met|have met|we met|achieved|previous year|last year|yearnum to yearnum)\b",
    "~gap": r"\b(we (recognise|acknowledge|realised|realized|found|identified|know|noticed)|gaps?|under-?represent\w*|disproportionat\w*|more to do|not yet|lower than|higher than|less likely|more likely|analysis (shows|showed|of)|we need to)\b",
}
_CUES = tuple((f"w:{name}", re.compile(pattern)) for name, pattern in CUES.items())


# How a feature reads to a validator: cues by what they stand for, folded numbers by their shape.
READABLE = {"~asked": "[asking people]", "~result": "[what people said]", "~future": "[a plan or target]",
            "~did": "[something done]", "~change": "[a change over time]", "~gap": "[a gap named]",
            "pctnum": "N%", "yearnum": "YYYY", "num": "N", "ve": "'ve", "ll": "'ll", "re": "'re"}


def readable(term: str) -> str:
    """A word feature (without its `w:` prefix) as a validator can read it in a dossier."""
    return " ".join(READABLE.get(word, word) for word in term.split())


def cues_each(norms: list[str]) -> list[list[str]]:
    """The cues of each normalised text, as `word_terms` finds them, each pattern run once over the
    texts joined (no cue can match across the join)."""
    joined = JOIN.join(norms)
    starts = list(accumulate((len(norm) + 1 for norm in norms[:-1]), initial=0))
    found: list[list[str]] = [[] for _ in norms]
    for name, pattern in _CUES:
        for match in pattern.finditer(joined):
            found[bisect_right(starts, match.start()) - 1].append(name)
    return found


def word_terms(norm: str) -> list[str]:
    """The word unigrams and bigrams of a normalised text, and its cues, repeats kept."""
    words = [f"w:{w}" for w in WORD.findall(norm)]
    cues = cues_each([norm])[0]
    return words + [f"{a} {b[2:]}" for a, b in zip(words, words[1:])] + cues


@lru_cache(maxsize=100_000)
def char_terms(token: str) -> tuple[str, ...]:
    """The character n-grams of one white-space-separated token, padded at both ends."""
    padded = f" {token} "
    return tuple(f"c:{padded[i:i + n]}" for n in CHAR_SIZES for i in range(len(padded) - n + 1))


def terms(text: str) -> Counter:
    """Every feature name in `text` with its count (before weighting)."""
    norm = normalise(text)
    counts = Counter(word_terms(norm))
    counts.update(chain.from_iterable(map(char_terms, norm.split())))
    return counts

"""The rubric as data: `config/rubric.toml` parsed into compiled, validated, frozen objects.

Validators edit the TOML, never code. Every mistake raises `RubricError` with the dotted path of
the field (`steps.4.patterns[0]`), which the application turns into a
one-line error naming the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from scoring.model import AWARDS, CRITERIA, LEVELS


class RubricError(ValueError):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class CriterionRule:
    name: str
    label: str
    question: str


@dataclass(frozen=True)
class Tag:
    """A CCQM step or guiding area, recognised by patterns."""

    key: str
    name: str
    phase: str
    patterns: tuple[re.Pattern[str], ...]
    criteria: tuple[str, ...] = ()  # a text labelled with one of these evidences the tag too

    @property
    def matcher(self) -> "Matcher":
        return any_of(self.patterns)


@dataclass(frozen=True)
class Rollup:
    min_item_score: float
    repeat_decay: float
    evidence_scale: float
    recency_half_life_days: float
    recency_floor: float
    month_bonus: float
    max_month_bonus: float
    platform_bonus: float
    hub_factor: float = 1.0  # weight of a hub page (a news index, a home page) against its posts

    @property
    def undated_recency(self) -> float:
        """The weight of evidence that gives no date of its own. Its age is unknown, so it is weighed
        at the average weight of dated evidence over the ages where recency tells them apart (from
        fresh down to the floor): the logarithmic mean of 1 and the floor, 0.72 for a floor of 0.5.
        Most real pages carry no date: weighed at the floor, as if they were the oldest evidence,
        they would hold real organisations below what the same words earn when dated."""
        floor = self.recency_floor
        return 1.0 if floor >= 1.0 else (1.0 - floor) / math.log(1.0 / floor)


@dataclass(frozen=True)
class AwardRule:
    level: str
    steps: tuple[int, ...]
    min_criteria_at: tuple[tuple[str, int], ...]  # (criterion level, how many criteria)
    min_months: int


@dataclass(frozen=True)
class Rubric:
    version: str
    label_threshold: float
    off_topic_factor: float
    topic: tuple[re.Pattern[str], ...]
    criteria: tuple[CriterionRule, ...]
    steps: tuple[Tag, ...]
    areas: tuple[Tag, ...]
    levels: tuple[tuple[str, float], ...]  # (level, minimum score), lowest first
    rollup: Rollup
    awards: tuple[AwardRule, ...]  # lowest first
    claims: tuple[re.Pattern[str], ...] = ()  # an award of the scheme a text says is held: group `level`

    def claimed_levels(self, text: str, lowered: str | None = None) -> tuple[str, ...]:
        """The awards of the scheme ("Bronze", "Silver", "Gold") that `text` says the organisation
        holds, lowest first (`lowered`: `text.lower()`, when the caller has it)."""
        lowered = text.lower() if lowered is None else lowered
        if not self.claims or not any(rule.level.lower() in lowered for rule in self.awards):
            return ()  # a claim names its award's level: most texts name none, and this costs little
        if not _claims_gate(self.claims).search(text, lowered):
            return ()  # one pass of every pattern: most texts that name a level claim nothing
        found = {m.group("level").capitalize() for pattern in self.claims for m in pattern.finditer(text)}
        return tuple(rule.level for rule in self.awards if rule.level in found)

    def claimed_steps(self, text: str) -> set[int]:
        """The steps of every award of the scheme that `text` says the organisation holds: the
        scheme's validators checked them when they gave it, so a held Silver evidences steps 1-5."""
        return self.award_steps(self.claimed_levels(text))

    def award_steps(self, levels: tuple[str, ...]) -> set[int]:
        """The steps the given awards require."""
        return {s for rule in self.awards if rule.level in levels for s in rule.steps}

    def criterion(self, name: str) -> CriterionRule:
        return next(c for c in self.criteria if c.name == name)

    def level_for(self, score: float) -> str:
        level = "none"
        for name, minimum in self.levels:
            if score >= minimum:
                level = name
        return level


_ESCAPE = re.compile(r"\\.")
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


class Matcher:
    """Whether a text matches any of a rubric's patterns, case-insensitively. Python's IGNORECASE
    doubles the cost of such patterns, so patterns with no capital letter of their own (escapes
    such as \\W aside) are matched as written against the lower-cased text: the same answer."""

    def __init__(self, patterns: tuple[re.Pattern[str], ...]):
        self.lowered = not any(c.isupper() for p in patterns for c in _ESCAPE.sub("", p.pattern))
        self.regex = re.compile(_boundary_once(patterns), 0 if self.lowered else re.IGNORECASE)

    def search(self, text: str, lowered: str | None = None) -> bool:
        """Whether `text` matches; pass `lowered` (`text.lower()`) when matching one text many times."""
        if self.lowered:
            return self.regex.search(text.lower() if lowered is None else lowered) is not None
        return self.regex.search(text) is not None


def _boundary_once(patterns: tuple[re.Pattern[str], ...]) -> str:
    """The patterns as one alternation, those that begin with a word boundary grouped behind one:
    `\\b(?:a|b)` matches where `\\ba|\\bb` does, but tests the boundary once at each position, not
    once a pattern (ten times faster for the topic's forty patterns)."""
    bounded = [p.pattern for p in patterns if _leads_with_boundary(p.pattern)]
    others = [p.pattern for p in patterns if not _leads_with_boundary(p.pattern)]
    return "|".join(([r"\b(?:" + "|".join(f"(?:{b[2:]})" for b in bounded) + ")"] if bounded else [])
                    + [f"(?:{o})" for o in others])


def _leads_with_boundary(pattern: str) -> bool:
    """Whether every match of `pattern` begins with its leading `\\b` (which Python cannot repeat)."""
    return pattern.startswith("\\b") and not _top_level_bar(pattern)


def _top_level_bar(pattern: str) -> bool:
    """Whether `pattern` is an alternation at its top level (`\\ba|b`), whose first branch alone
    begins with the boundary. Errs towards yes: a class such as `[]|]` reads as one."""
    depth, in_class, i = 0, False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1
        elif in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        i += 1
    return False


@lru_cache(maxsize=256)
def any_of(patterns: tuple[re.Pattern[str], ...]) -> Matcher:
    """One matcher for all of `patterns`: one pass over a text, not one each."""
    return Matcher(patterns)


@lru_cache(maxsize=16)
def _claims_gate(patterns: tuple[re.Pattern[str], ...]) -> Matcher:
    """Whether any claim pattern matches, in one pass (their named groups unnamed: one alternation
    cannot name a group twice)."""
    return any_of(tuple(re.compile(_NAMED_GROUP.sub("(", p.pattern), p.flags) for p in patterns))


def _get(table: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any = ...):
    if key not in table:
        if default is ...:
            raise RubricError(f"{path}{key}", "is required")
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise RubricError(f"{path}{key}", f"expected {name}, got {value!r}")
    return value


def _fraction(table: dict[str, Any], key: str, path: str, default: Any = ...) -> float:
    value = _get(table, key, path, float, default)
    if not 0.0 <= value <= 1.0:
        raise RubricError(f"{path}{key}", f"must be between 0 and 1, got {value}")
    return value


def _patterns(values: Any, path: str) -> tuple[re.Pattern[str], ...]:
    if not isinstance(values, list) or not values:
        raise RubricError(path, "expected a non-empty list of regular expressions")
    compiled = []
    for i, pattern in enumerate(values):
        if not isinstance(pattern, str):
            raise RubricError(f"{path}[{i}]", f"expected a string, got {pattern!r}")
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise RubricError(f"{path}[{i}]", f"not a valid regular expression ({exc})") from None
    return tuple(compiled)


def _tags(table: Any, path: str) -> tuple[Tag, ...]:
    if not isinstance(table, dict) or not table:
        raise RubricError(path, "expected a table of named entries")
    tags = []
    for key, entry in table.items():
        p = f"{path}.{key}."
        if not isinstance(entry, dict):
            raise RubricError(p[:-1], "expected a table")
        criteria = tuple(_get(entry, "criteria", p, list, []))
        unknown = [c for c in criteria if c not in CRITERIA]
        if unknown:
            raise RubricError(p + "criteria", f"unknown criterion {unknown[0]!r} (known: {', '.join(CRITERIA)})")
        tags.append(Tag(key=key, name=_get(entry, "name", p, str), phase=_get(entry, "phase", p, str, ""),
                        patterns=_patterns(entry.get("patterns"), p + "patterns"), criteria=criteria))
    return tuple(tags)


def parse_rubric(data: dict[str, Any]) -> Rubric:
    """Check and compile a rubric read from TOML."""
    version = _get(data, "version", "", str)
    criteria_table = _get(data, "criteria", "", dict)
    missing = [c for c in CRITERIA if c not in criteria_table]
    if missing:
        raise RubricError(f"criteria.{missing[0]}", "is required (the five criteria are fixed)")
    unknown = [c for c in criteria_table if c not in CRITERIA]
    if unknown:
        raise RubricError(f"criteria.{unknown[0]}", f"unknown criterion (known: {', '.join(CRITERIA)})")
    criteria = []
    for name in CRITERIA:
        entry, p = criteria_table[name], f"criteria.{name}."
        if not isinstance(entry, dict):
            raise RubricError(p[:-1], "expected a table")
        extra = sorted(set(entry) - {"label", "question"})
        if extra:
            raise RubricError(p + extra[0], "unknown key (a criterion has a label and a question; the classifier "
                                            "decides the labels)")
        criteria.append(CriterionRule(name=name, label=_get(entry, "label", p, str),
                                      question=_get(entry, "question", p, str, "")))

    levels_table = _get(data, "levels", "", dict)
    levels = []
    for level in LEVELS[1:]:
        levels.append((level, _fraction(levels_table, level, "levels.")))
    if [m for _, m in levels] != sorted(m for _, m in levels):
        raise RubricError("levels", "bronze <= silver <= gold is required")

    r = _get(data, "rollup", "", dict)
    rollup = Rollup(
        min_item_score=_fraction(r, "min_item_score", "rollup."),
        repeat_decay=_fraction(r, "repeat_decay", "rollup."),
        evidence_scale=_get(r, "evidence_scale", "rollup.", float),
        recency_half_life_days=_get(r, "recency_half_life_days", "rollup.", float),
        recency_floor=_fraction(r, "recency_floor", "rollup."),
        month_bonus=_fraction(r, "month_bonus", "rollup."),
        max_month_bonus=_fraction(r, "max_month_bonus", "rollup."),
        platform_bonus=_fraction(r, "platform_bonus", "rollup."),
        hub_factor=_fraction(r, "hub_factor", "rollup.", 1.0),
    )
    if rollup.evidence_scale <= 0 or rollup.recency_half_life_days <= 0:
        raise RubricError("rollup", "evidence_scale and recency_half_life_days must be positive")
    if rollup.recency_floor <= 0:
        raise RubricError("rollup.recency_floor", "must be above 0: evidence never loses all its weight")

    awards = []
    award_table = _get(data, "award", "", dict)
    for level in AWARDS:
        p = f"award.{level}."
        entry = _get(award_table, level, "award.", dict)
        steps = _get(entry, "steps", p, list, [])
        if not all(isinstance(s, int) and 1 <= s <= 7 for s in steps):
            raise RubricError(p + "steps", "expected step numbers from 1 to 7")
        at = _get(entry, "min_criteria_at", p, dict, {})
        for lvl, count in at.items():
            if lvl not in LEVELS[1:] or not isinstance(count, int) or not 0 <= count <= len(CRITERIA):
                raise RubricError(f"{p}min_criteria_at.{lvl}",
                                  f"expected bronze/silver/gold = 0..{len(CRITERIA)}")
        awards.append(AwardRule(level=level, steps=tuple(steps), min_criteria_at=tuple(at.items()),
                                min_months=_get(entry, "min_months", p, int, 0)))

    steps = _tags(data.get("steps"), "steps")
    if sorted(t.key for t in steps) != [str(n) for n in range(1, 8)]:
        raise RubricError("steps", "expected exactly the seven steps [steps.1] to [steps.7]")
    claims_table = _get(data, "claims", "", dict, {})  # optional: a rubric of its own may not name claims
    claims = _patterns(claims_table.get("patterns"), "claims.patterns") if claims_table else ()
    for i, pattern in enumerate(claims):
        if "level" not in pattern.groupindex:
            raise RubricError(f"claims.patterns[{i}]", "needs a (?P<level>...) group: the award it reads")
    topic = _get(data, "topic", "", dict)
    return Rubric(
        version=version,
        label_threshold=_fraction(data, "label_threshold", ""),
        off_topic_factor=_fraction(topic, "off_topic_factor", "topic."),
        topic=_patterns(topic.get("patterns"), "topic.patterns"),
        criteria=tuple(criteria),
        steps=steps,
        areas=_tags(data.get("areas"), "areas"),
        levels=tuple(levels),
        rollup=rollup,
        awards=tuple(awards),
        claims=claims,
    )

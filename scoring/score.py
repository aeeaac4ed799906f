"""Roll one organisation's classified items up into criterion levels and an award recommendation.

For each criterion: items scoring at least `min_item_score` count; items that are the same
evidence (a news page and the feed entry linking to it) count once, at their best; the strongest
counts fully and each next one `repeat_decay` times less (diminishing returns for repeats); each
is weighted by recency, and hub pages (a news index repeating its posts' teasers) count less. The sum maps to [0, 1] through 1 - exp(-evidence_scale * sum), plus a
bonus for spread across months and for evidence on both the website and social media. Validators'
overrides win over the machine: an excluded item never counts, an included one counts fully.
Every number comes with a sentence that says where it came from.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from functools import lru_cache
from urllib.parse import urlsplit
from collections import defaultdict

from scoring.model import (
    CRITERIA, LEVELS, Award, Citation, Classification, CriterionResult, CriterionScore, Evidence, OrgScore,
    Override, StepStatus,
)
from scoring.rubric import Rubric

WEBSITE_PLATFORMS = {"website", "feed"}


def _link_key(item: Evidence) -> str:
    """Items with the same canonical link are one piece of evidence (a page and its feed entry)."""
    if item.url:
        return item.url.split("#")[0].rstrip("/").lower()
    return item.id


SHINGLE = 6  # words: passages sharing runs this long are the same words reposted


WORDS = re.compile(r"[\w%]+")


def _shingles(item: Evidence, result: CriterionResult) -> frozenset[int]:
    """Runs of words of the passage that carried the criterion (the whole body if none)."""
    body = item.body
    start, end = ([s for hit in result.signals for s in hit.spans][:1] or [(0, len(body))])[0]
    return _runs(body, start, end)


@lru_cache(maxsize=4096)
def _runs(body: str, start: int, end: int) -> frozenset[int]:
    """Each run of words by its hash: a set of numbers is compared faster than one of word tuples,
    and takes half the memory. (Criteria often share a passage: each is read once.)"""
    words = WORDS.findall(body[start:end].lower())
    if len(words) < SHINGLE:
        return frozenset({hash(tuple(words))}) if words else frozenset()
    return frozenset(map(hash, zip(*(words[i:] for i in range(SHINGLE)))))


def _same_words(entries: list[tuple], name: str, classes: dict[str, Classification]) -> list[tuple]:
    """One entry per piece of evidence: a passage whose runs of words are mostly ones already
    counted (a news index's teaser, a cross-post, a page and its feed entry) is the same evidence,
    counted once at its best. Each passage is checked against the set of runs seen so far: no
    pairwise step."""
    seen: set[int] = set()
    kept: list[tuple] = []
    for entry in sorted(entries, key=lambda e: (-e[0], e[1].id)):
        if entry[3]:  # a validator's include always counts on its own
            kept.append(entry)
            continue
        runs = _shingles(entry[1], classes[entry[1].id].criteria[name])
        if runs and len(runs & seen) >= 0.5 * len(runs):
            continue
        seen |= runs
        kept.append(entry)
    return kept


def _best_per_key(entries: list[tuple], key) -> list[tuple]:
    best: dict[str, tuple] = {}
    for entry in entries:
        k = key(entry)
        if k not in best or entry[0] > best[k][0]:
            best[k] = entry
    return list(best.values())


def _counted(n: int, one: str, many: str | None = None) -> str:
    """"1 month", "3 months", "1 criterion", "2 criteria": a count as a validator reads it."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def _recency(item: Evidence, rubric: Rubric, now: dt.datetime) -> float:
    when = item.when
    if when is None:
        return rubric.rollup.undated_recency
    age_days = max(0.0, (now - when).total_seconds() / 86400)
    decay = 0.5 ** (age_days / rubric.rollup.recency_half_life_days)
    return max(rubric.rollup.recency_floor, decay)


def _folder(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def _hubs(items: list[Evidence], min_children: int = 3) -> set[str]:
    """Pages whose URL is the folder of several other items' URLs: a news index or a home page
    repeats its posts' teasers, so it should not outrank the posts themselves. Each item adds one
    to every folder above it, so the cost grows with the items, not with their pairs."""
    below: dict[tuple[str, str], int] = defaultdict(int)
    parsed = [(i.id, urlsplit(i.url)) for i in items if i.url]
    for _, parts in parsed:
        own = _folder(parts.path)
        cut = own.rstrip("/").rfind("/")
        while cut >= 0:  # every proper ancestor folder: /news/2026/x/ -> /news/2026/, /news/, /
            below[(parts.netloc, own[:cut + 1])] += 1
            cut = own[:cut].rfind("/")
    return {item_id for item_id, parts in parsed if below.get((parts.netloc, _folder(parts.path)), 0) >= min_children}


def _overrides_by_item(overrides: list[Override]) -> dict[str, list[Override]]:
    by_item: dict[str, list[Override]] = defaultdict(list)
    for o in sorted(overrides, key=lambda o: o.at):
        by_item[o.item_id].append(o)
    return by_item


def _standing(overrides: list[Override], criterion: str) -> Override | None:
    """The latest include or exclude of one item (its overrides, oldest first) that applies to this
    criterion (one made for every criterion applies to each), if any."""
    found = None
    for o in overrides:
        if o.action in ("include", "exclude") and o.criterion in (None, criterion):
            found = o
    return found


def _decision(overrides: list[Override], criterion: str) -> str | None:
    """The standing decision ("include" or "exclude") of one item for this criterion, if any."""
    found = _standing(overrides, criterion)
    return found.action if found else None


def standing_decisions(overrides: list[Override]) -> dict[tuple[str, str], Override]:
    """For each (item, criterion) a validator has decided, the override that stands (`_standing`)."""
    return {(item_id, name): found for item_id, mine in _overrides_by_item(overrides).items() for name in CRITERIA
            if (found := _standing(mine, name)) is not None}


def decisions(overrides: list[Override]) -> dict[str, dict[str, str]]:
    """Each decided item's standing decision per criterion ("include" or "exclude"): what the
    validators have said an item evidences, or does not."""
    out: dict[str, dict[str, str]] = {}
    for (item_id, name), o in standing_decisions(overrides).items():
        out.setdefault(item_id, {})[name] = o.action
    return out


def _score_criterion(name: str, items: list[Evidence], classes: dict[str, Classification],
                     overrides: dict[str, list[Override]], rubric: Rubric, recency: dict[str, float],
                     keys: dict[str, str], hubs: set[str] = frozenset()) -> CriterionScore:
    """One criterion's score; `recency` and `keys` hold each item's `_recency` and `_link_key`,
    worked out once for all five criteria."""
    rule = rubric.criterion(name)
    r = rubric.rollup
    counted: list[tuple[float, Evidence, tuple[str, ...], bool]] = []
    excluded: list[str] = []
    for item in items:
        result = classes[item.id].criteria[name]
        decision = _decision(overrides.get(item.id, []), name)
        if decision == "exclude":
            excluded.append(item.id)
            continue
        score, signals, forced = result.score, tuple(s.name for s in result.signals), False
        if decision == "include":
            score, signals, forced = 1.0, signals + ("validator included",), True
        if score < r.min_item_score:
            continue
        factor = rubric.rollup.hub_factor if item.id in hubs and not forced else 1.0
        counted.append((score * recency[item.id] * factor, item, signals, forced))

    distinct = _best_per_key(counted, lambda e: keys[e[1].id])
    distinct = _same_words(distinct, name, classes)
    ranked = sorted(distinct, key=lambda t: (-t[0], t[1].id))
    total, cited = 0.0, []
    for rank, (weighted, item, signals, forced) in enumerate(ranked):
        contribution = weighted * r.repeat_decay ** rank
        total += contribution
        raw = 1.0 if forced else classes[item.id].criteria[name].score
        cited.append(Citation(item_id=item.id, item_score=round(raw, 4), contribution=round(contribution, 4),
                              signals=signals, overridden=forced))
    months = {(i.when.year, i.when.month) for _, i, _, _ in ranked if i.when}
    families = {"website" if i.platform in WEBSITE_PLATFORMS else "social" for _, i, _, _ in ranked}
    month_bonus = min(r.max_month_bonus, r.month_bonus * max(0, len(months) - 1))
    platform_bonus = r.platform_bonus if len(families) > 1 else 0.0
    score = 0.0
    if ranked:
        score = min(1.0, 1.0 - math.exp(-r.evidence_scale * total) + month_bonus + platform_bonus)
    score = round(score, 4)
    level = rubric.level_for(score)

    reasons: list[str] = []
    if not ranked:
        reasons.append("No item reaches the evidence threshold "
                       f"({r.min_item_score:.2f})" + (" after validators' exclusions." if excluded else "."))
    else:
        strongest = ranked[0]
        undated = sum(1 for _, i, _, _ in ranked if not i.when)
        if not months:
            when = ", undated," if len(ranked) == 1 else ", all undated,"
        else:
            when = f" across {_counted(len(months), 'month')}" + (f" ({undated} undated)" if undated else "")
        reasons.append(
            f"{_counted(len(ranked), 'distinct item')} of evidence{when} "
            f"on {' and '.join(sorted(families))}; strongest scores "
            f"{classes[strongest[1].id].criteria[name].score if not strongest[3] else 1.0:.2f}"
            + (" (included by a validator)." if strongest[3] else "."))
        if undated:
            reasons.append(f"An item with no date of its own counts at {r.undated_recency:.2f} of a fresh item's weight "
                           "(the average weight of dated evidence), and for no month.")
        if month_bonus or platform_bonus:
            reasons.append(f"Spread bonus {month_bonus + platform_bonus:+.2f} "
                           f"(months {month_bonus:+.2f}, website and social {platform_bonus:+.2f}).")
    nxt = [lvl for lvl, minimum in rubric.levels if minimum > score]
    if nxt:
        minimum = dict(rubric.levels)[nxt[0]]
        reasons.append(f"Level {level}: {nxt[0]} needs a score of {minimum:.2f}.")
    else:
        reasons.append(f"Level {level}: the top level.")
    if excluded:
        reasons.append(f"{_counted(len(excluded), 'item')} excluded by validators.")
    return CriterionScore(criterion=name, label=rule.label, score=score, level=level,
                          reasons=tuple(reasons), cited=tuple(cited), excluded=tuple(excluded))


def _steps(kept: list[str], classes: dict[str, Classification], rubric: Rubric) -> tuple[StepStatus, ...]:
    """Each step with the items that evidence it, strongest first on the step's own criteria."""
    steps = []
    for tag in rubric.steps:
        number = int(tag.key)
        found = [i for i in kept if number in classes[i].steps]
        by = tuple(sorted(found, key=lambda i: -max((classes[i].criteria[c].score for c in tag.criteria
                                                     if c in classes[i].criteria), default=0.0)))
        steps.append(StepStatus(number=number, name=tag.name, phase=tag.phase, evidenced_by=by))
    return tuple(sorted(steps, key=lambda s: s.number))


def _claims(kept: list[str], classes: dict[str, Classification],
            rubric: Rubric) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each award of the scheme the organisation says it holds, lowest first, with the items that
    say so: the scheme's own records can confirm it."""
    said = ((rule.level, tuple(i for i in kept if rule.level in classes[i].claims)) for rule in rubric.awards)
    return tuple((level, ids) for level, ids in said if ids)


def _award(criteria: tuple[CriterionScore, ...], steps: tuple[StepStatus, ...], months: int,
           rubric: Rubric) -> Award:
    rank = {lvl: i for i, lvl in enumerate(LEVELS)}
    evidenced = {s.number for s in steps if s.evidenced_by}
    level, reasons, blockers = None, [], []
    for rule in rubric.awards:
        unmet = []
        missing_steps = [s for s in rule.steps if s not in evidenced]
        if missing_steps:
            unmet.append(f"steps {', '.join(map(str, missing_steps))} not evidenced")
        for lvl, count in rule.min_criteria_at:
            have = sum(1 for c in criteria if rank[c.level] >= rank[lvl])
            if have < count:
                unmet.append(f"{_counted(have, 'criterion', 'criteria')} at {lvl} or above, {count} needed")
        if months < rule.min_months:
            unmet.append(f"evidence spans {_counted(months, 'month')}, {rule.min_months} needed")
        if unmet:
            blockers = [f"{rule.level}: {u}" for u in unmet]
            break
        level = rule.level
        reasons.append(f"{rule.level}: every requirement met (steps "
                       f"{', '.join(map(str, rule.steps)) or 'none'}; "
                       + "; ".join(f"{n} criteria at {lvl}+" for lvl, n in rule.min_criteria_at)
                       + (f"; {rule.min_months}+ months of dated evidence" if rule.min_months else "") + ").")
    if level is None:
        reasons.append("No award level is met yet.")
    return Award(level=level, reasons=tuple(reasons), blockers=tuple(blockers))


def score_organisation(org_id: str, items: list[Evidence], classes: dict[str, Classification],
                       overrides: list[Override], rubric: Rubric, now: dt.datetime, scorer: str | None = None) -> OrgScore:
    """Roll an organisation's items up into five criterion scores, the steps and an award.
    `scorer` names the rubric and classifier that made `classes` (the rubric's version if not given)."""
    by_item = _overrides_by_item(overrides)
    hubs = _hubs(items)
    recency = {i.id: _recency(i, rubric, now) for i in items}
    keys = {i.id: _link_key(i) for i in items}
    criteria = tuple(_score_criterion(name, items, classes, by_item, rubric, recency, keys, hubs) for name in CRITERIA)
    kept = [i.id for i in items if _decision(by_item.get(i.id, []), "__all__") != "exclude"]  # not excluded outright
    steps = _steps(kept, classes, rubric)
    counted = {c.item_id for crit in criteria for c in crit.cited}
    months = len({(i.when.year, i.when.month) for i in items if i.id in counted and i.when})
    notes = tuple(o for o in overrides if o.action == "note")
    return OrgScore(org_id=org_id, rubric_version=scorer or rubric.version, scored_at=now, criteria=criteria,
                    steps=steps, award=_award(criteria, steps, months, rubric), notes=notes,
                    claims=_claims(kept, classes, rubric))

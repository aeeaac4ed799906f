"""The roll-up's arithmetic, on hand-built evidence and classifications scored against the real
rubric: recency, repeat decay, the month and platform bonuses, level thresholds, the award paths
and what blocks them, and validators' include/exclude.

Every expected number is computed from the parsed rubric's own values, never written in by hand,
so a validator retuning config/rubric.toml changes the expectations with it.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib

import pytest

from scoring import CRITERIA, Classification, CriterionResult, Evidence, Override, parse_rubric, score_organisation
from tests.conftest import PROJECT

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GOALS = "goals_set"


@pytest.fixture(scope="module")
def rubric():
    return parse_rubric(tomllib.loads((PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8")))


# -- building blocks ------------------------------------------------------------------------------

def ev(item_id: str, *, when: dt.datetime | None = NOW, platform: str = "website", url: str | None = None) -> Evidence:
    return Evidence(id=item_id, org_id="org", platform=platform, title="", text=f"Text of {item_id}.", url=url,
                    published=when)


def cls(rubric, scores: dict[str, float] | None = None, steps=()) -> Classification:
    """A classification with no signals (so each item is its own piece of evidence)."""
    scores = scores or {}
    return Classification(criteria={c: CriterionResult(score=scores.get(c, 0.0)) for c in CRITERIA},
                          steps=tuple(steps), rubric_version=rubric.version)


def roll(rubric, entries, overrides=()):
    items = [e for e, _ in entries]
    return score_organisation("org", items, {e.id: c for e, c in entries}, list(overrides), rubric, NOW)


def month(k: int) -> dt.datetime:
    """The 15th of the k-th calendar month before NOW's (k = 0: NOW's own month)."""
    y, m = divmod(NOW.month - 1 - k, 12)
    return dt.datetime(NOW.year + y, m + 1, 15, tzinfo=UTC)


def recency(rubric, when: dt.datetime | None) -> float:
    r = rubric.rollup
    if when is None:
        return r.undated_recency
    age_days = max(0.0, (NOW - when).total_seconds() / 86400)
    return max(r.recency_floor, 0.5 ** (age_days / r.recency_half_life_days))


def expected(rubric, weights: list[float], bonus: float = 0.0) -> float:
    """The criterion score the rubric's roll-up gives for these weighted items plus a spread bonus."""
    r = rubric.rollup
    total = sum(w * r.repeat_decay ** rank for rank, w in enumerate(sorted(weights, reverse=True)))
    return round(min(1.0, 1.0 - math.exp(-r.evidence_scale * total) + bonus), 4)


def weight_for(rubric, score: float) -> float:
    """The total weighted evidence whose roll-up is exactly `score` (no bonus)."""
    return -math.log(1.0 - score) / rubric.rollup.evidence_scale


def items_totalling(rubric, total: float, criterion: str, prefix: str = "x"):
    """Equal items, fresh (recency 1), undated or old (the floor), one month, one platform, whose decayed
    sum is `total`: no bonus applies, so the roll-up is 1 - exp(-scale * total)."""
    r = rubric.rollup
    old = NOW - dt.timedelta(days=4 * r.recency_half_life_days)  # held at the floor
    for n in range(1, 10):
        series = sum(r.repeat_decay ** k for k in range(n))
        for rec, when in ((1.0, NOW), (r.undated_recency, None), (r.recency_floor, old)):
            s = total / (rec * series)
            if r.min_item_score <= s <= 1.0:
                return [(ev(f"{prefix}{k}", when=when), cls(rubric, {criterion: s})) for k in range(n)]
    pytest.fail(f"no set of equal items reaches {total} under this rubric")


# -- recency ----------------------------------------------------------------------------------------

def test_recency_halves_weight_per_half_life_and_never_goes_below_the_floor(rubric):
    r = rubric.rollup
    half_life = dt.timedelta(days=r.recency_half_life_days)

    def alone(when):
        crit = roll(rubric, [(ev("a", when=when), cls(rubric, {GOALS: 1.0}))]).criterion(GOALS)
        (cited,) = crit.cited
        assert crit.score == pytest.approx(expected(rubric, [cited.contribution]), abs=1e-4)
        return cited.contribution

    fresh = alone(NOW)
    assert fresh == 1.0
    assert alone(NOW + dt.timedelta(days=30)) == fresh  # a future date is not fresher than now
    assert r.recency_floor <= 0.5  # so one half-life is still above (or at) the floor
    assert alone(NOW - half_life) == pytest.approx(0.5 * fresh, abs=1e-4)
    assert alone(NOW - half_life / 2) == pytest.approx(max(r.recency_floor, 0.5 ** 0.5) * fresh, abs=1e-4)
    assert 0.5 ** 3 < r.recency_floor  # three half-lives would fall below the floor ...
    assert alone(NOW - 3 * half_life) == pytest.approx(r.recency_floor, abs=1e-4)  # ... which holds it
    # evidence with no date counts as much as dated evidence does on average, from fresh to the floor:
    # neither the freshest nor the oldest
    window = r.recency_half_life_days * math.log2(1 / r.recency_floor)
    steps = 400
    def weight(when):
        return roll(rubric, [(ev("a", when=when), cls(rubric, {GOALS: 1.0}))]).criterion(GOALS).cited[0].contribution

    average = sum(weight(NOW - dt.timedelta(days=window * (k + 0.5) / steps)) for k in range(steps)) / steps
    assert alone(None) == pytest.approx(average, abs=1e-3)
    assert r.recency_floor < alone(None) < fresh


def test_the_reason_says_how_much_of_the_evidence_is_undated(rubric):
    def first_reason(*whens):
        entries = [(ev(f"i{k}", when=when), cls(rubric, {GOALS: 0.9})) for k, when in enumerate(whens)]
        return roll(rubric, entries).criterion(GOALS).reasons[0]

    assert first_reason(None).startswith("1 distinct item of evidence, undated, on website;")
    assert first_reason(None, None).startswith("2 distinct items of evidence, all undated, on website;")
    assert first_reason(month(0), month(2), None).startswith("3 distinct items of evidence across 2 months (1 undated) on")
    assert first_reason(month(0), month(0)).startswith("2 distinct items of evidence across 1 month on")
    undated = roll(rubric, [(ev("u", when=None), cls(rubric, {GOALS: 0.9}))]).criterion(GOALS).reasons
    assert f"counts at {rubric.rollup.undated_recency:.2f} of a fresh item's weight" in undated[1]
    dated = roll(rubric, [(ev("d", when=NOW), cls(rubric, {GOALS: 0.9}))]).criterion(GOALS).reasons
    assert not any("no date" in reason for reason in dated)


def test_recency_weights_the_criterion_score(rubric):
    half_life = dt.timedelta(days=rubric.rollup.recency_half_life_days)
    old = roll(rubric, [(ev("a", when=NOW - half_life), cls(rubric, {GOALS: 0.8}))]).criterion(GOALS)
    assert old.score == expected(rubric, [0.8 * recency(rubric, NOW - half_life)])
    assert old.cited[0].item_score == 0.8  # the item's own score is shown unweighted


# -- repeat decay -----------------------------------------------------------------------------------

def test_each_further_distinct_item_counts_repeat_decay_times_less(rubric):
    d = rubric.rollup.repeat_decay
    entries = [(ev(f"i{n}"), cls(rubric, {GOALS: 1.0})) for n in range(3)]
    crit = roll(rubric, entries).criterion(GOALS)
    assert [c.contribution for c in crit.cited] == [round(1.0, 4), round(d, 4), round(d * d, 4)]
    assert crit.cited[1].contribution == pytest.approx(d * crit.cited[0].contribution, abs=1e-4)
    assert crit.score == expected(rubric, [1.0, 1.0, 1.0])


def test_the_strongest_item_counts_fully_whatever_the_order(rubric):
    d = rubric.rollup.repeat_decay
    entries = [(ev("weak"), cls(rubric, {GOALS: 0.5})), (ev("strong"), cls(rubric, {GOALS: 0.9}))]
    crit = roll(rubric, entries).criterion(GOALS)
    assert [c.item_id for c in crit.cited] == ["strong", "weak"]
    assert [c.contribution for c in crit.cited] == [0.9, round(0.5 * d, 4)]
    assert crit.score == expected(rubric, [0.9, 0.5])


def test_an_item_below_the_evidence_threshold_does_not_count(rubric):
    below = rubric.rollup.min_item_score - 0.01
    crit = roll(rubric, [(ev("a"), cls(rubric, {GOALS: below}))]).criterion(GOALS)
    assert crit.cited == () and crit.score == 0.0 and crit.level == "none"
    at = roll(rubric, [(ev("a"), cls(rubric, {GOALS: rubric.rollup.min_item_score}))]).criterion(GOALS)
    assert [c.item_id for c in at.cited] == ["a"]


# -- spread bonuses ---------------------------------------------------------------------------------

def test_evidence_across_three_months_gets_the_month_bonus(rubric):
    r = rubric.rollup
    dates = [month(0), month(1), month(2)]
    crit = roll(rubric, [(ev(f"m{k}", when=w), cls(rubric, {GOALS: 0.5})) for k, w in enumerate(dates)]).criterion(GOALS)
    bonus = min(r.max_month_bonus, r.month_bonus * 2)
    assert bonus > 0
    assert crit.score == expected(rubric, [0.5 * recency(rubric, w) for w in dates], bonus)
    assert "3 months" in crit.reasons[0]
    assert any(f"months {bonus:+.2f}" in reason for reason in crit.reasons)

    # The same three items in one month get none.
    same = [NOW - dt.timedelta(days=k) for k in range(3)]
    assert all(w.month == NOW.month for w in same)
    flat = roll(rubric, [(ev(f"m{k}", when=w), cls(rubric, {GOALS: 0.5})) for k, w in enumerate(same)]).criterion(GOALS)
    assert flat.score == expected(rubric, [0.5 * recency(rubric, w) for w in same])


def test_the_month_bonus_is_capped(rubric):
    r = rubric.rollup
    n = 2 + math.ceil(r.max_month_bonus / r.month_bonus)  # enough months to pass the cap
    assert r.month_bonus * (n - 1) > r.max_month_bonus
    dates = [month(k) for k in range(n)]
    crit = roll(rubric, [(ev(f"m{k}", when=w), cls(rubric, {GOALS: 0.5})) for k, w in enumerate(dates)]).criterion(GOALS)
    assert crit.score == expected(rubric, [0.5 * recency(rubric, w) for w in dates], r.max_month_bonus)


def test_evidence_on_the_website_and_social_media_gets_the_platform_bonus(rubric):
    r = rubric.rollup

    def both(platform):
        entries = [(ev("site"), cls(rubric, {GOALS: 0.6})), (ev("other", platform=platform), cls(rubric, {GOALS: 0.6}))]
        return roll(rubric, entries).criterion(GOALS)

    assert both("mastodon").score == expected(rubric, [0.6, 0.6], r.platform_bonus)
    assert both("bluesky").score == expected(rubric, [0.6, 0.6], r.platform_bonus)
    assert both("feed").score == expected(rubric, [0.6, 0.6])  # a feed is the website's own family
    assert both("website").score == expected(rubric, [0.6, 0.6])
    assert "website and social" in " ".join(both("mastodon").reasons)


# -- levels -----------------------------------------------------------------------------------------

def test_a_score_exactly_at_a_level_minimum_reaches_it(rubric):
    previous = "none"
    for level, minimum in rubric.levels:
        assert rubric.level_for(minimum) == level
        assert rubric.level_for(minimum - 1e-9) == previous
        previous = level
    assert rubric.level_for(0.0) == "none" and rubric.level_for(1.0) == rubric.levels[-1][0]


@pytest.mark.parametrize("level", ["bronze", "silver", "gold"])
def test_a_rolled_up_score_at_a_level_minimum_reaches_that_level(rubric, level):
    minimum = dict(rubric.levels)[level]
    at = roll(rubric, items_totalling(rubric, weight_for(rubric, minimum), GOALS)).criterion(GOALS)
    assert at.score == minimum
    assert at.level == level
    below = roll(rubric, items_totalling(rubric, weight_for(rubric, minimum - 0.001), GOALS)).criterion(GOALS)
    assert below.score == pytest.approx(minimum - 0.001, abs=1e-4)
    assert below.level != level


# -- awards -----------------------------------------------------------------------------------------

def award_rule(rubric, level: str):
    return next(a for a in rubric.awards if a.level == level)


def organisation(rubric, *, strong: int, months: int, steps: tuple[int, ...]):
    """`strong` criteria evidenced by one item per month (score 1), the rest at bronze by the newest
    item only; the steps spread over the items."""
    r = rubric.rollup
    bronze, silver = dict(rubric.levels)["bronze"], dict(rubric.levels)["silver"]
    dates = [month(k) for k in range(months)] if months > 1 else [NOW - dt.timedelta(days=k) for k in range(3)]
    weak_score = weight_for(rubric, (bronze + silver) / 2) / recency(rubric, dates[0])
    assert r.min_item_score <= weak_score <= 1.0
    entries = []
    for k, when in enumerate(dates):
        scores = {c: 1.0 for c in CRITERIA[:strong]}
        if k == 0:
            scores.update({c: weak_score for c in CRITERIA[strong:]})
        entries.append((ev(f"e{k}", when=when), cls(rubric, scores, steps[k::len(dates)])))
    return entries


def levels_of(scored):
    return {c.criterion: c.level for c in scored.criteria}


def test_gold_path_every_requirement_met(rubric):
    gold = award_rule(rubric, "Gold")
    scored = roll(rubric, organisation(rubric, strong=len(CRITERIA), months=gold.min_months, steps=gold.steps))
    assert set(levels_of(scored).values()) == {"gold"}
    assert scored.award.level == "Gold"
    assert scored.award.blockers == ()
    assert [reason.split(":")[0] for reason in scored.award.reasons] == ["Bronze", "Silver", "Gold"]


def test_silver_path_and_what_blocks_gold(rubric):
    silver, gold = award_rule(rubric, "Silver"), award_rule(rubric, "Gold")
    need = dict(silver.min_criteria_at)["silver"]
    scored = roll(rubric, organisation(rubric, strong=need, months=silver.min_months, steps=silver.steps))
    levels = levels_of(scored)
    assert [levels[c] for c in CRITERIA[:need]] == ["gold"] * need  # guard: the design holds
    assert [levels[c] for c in CRITERIA[need:]] == ["bronze"] * (len(CRITERIA) - need)
    assert scored.award.level == "Silver"
    missing = [s for s in gold.steps if s not in silver.steps]
    at = dict(gold.min_criteria_at)
    assert scored.award.blockers == (
        f"Gold: steps {', '.join(map(str, missing))} not evidenced",
        f"Gold: {need} criteria at silver or above, {at['silver']} needed",
        f"Gold: evidence spans {silver.min_months} months, {gold.min_months} needed",
    )


def test_bronze_path_when_silver_lacks_criteria_at_silver(rubric):
    silver = award_rule(rubric, "Silver")
    need = dict(silver.min_criteria_at)["silver"]
    scored = roll(rubric, organisation(rubric, strong=need - 1, months=silver.min_months, steps=silver.steps))
    assert scored.award.level == "Bronze"
    assert scored.award.blockers == (f"Silver: {need - 1} criteria at silver or above, {need} needed",)


def test_silver_blocked_by_missing_steps(rubric):
    bronze, silver = award_rule(rubric, "Bronze"), award_rule(rubric, "Silver")
    need = dict(silver.min_criteria_at)["silver"]
    scored = roll(rubric, organisation(rubric, strong=need, months=silver.min_months, steps=bronze.steps))
    missing = [s for s in silver.steps if s not in bronze.steps]
    assert missing
    assert scored.award.level == "Bronze"
    assert scored.award.blockers == (f"Silver: steps {', '.join(map(str, missing))} not evidenced",)


def test_silver_blocked_by_too_few_months(rubric):
    silver = award_rule(rubric, "Silver")
    need = dict(silver.min_criteria_at)["silver"]
    assert silver.min_months > 1
    scored = roll(rubric, organisation(rubric, strong=need, months=1, steps=silver.steps))
    assert scored.award.level == "Bronze"
    assert scored.award.blockers == (f"Silver: evidence spans 1 month, {silver.min_months} needed",)


def test_undated_evidence_earns_bronze_but_not_a_journey_over_months(rubric):
    """Most real pages carry no date: their evidence counts for the foundation, not for Silver's spread."""
    bronze, silver = award_rule(rubric, "Bronze"), award_rule(rubric, "Silver")
    scores = {c: 1.0 for c in CRITERIA}
    entries = [(ev(f"u{k}", when=None), cls(rubric, scores, silver.steps[k::3])) for k in range(3)]
    scored = roll(rubric, entries)
    assert bronze.min_months == 0 and set(levels_of(scored).values()) - {"none"}
    assert scored.award.level == "Bronze"
    assert scored.award.blockers == (f"Silver: evidence spans 0 months, {silver.min_months} needed",)


def test_bronze_blocked_by_a_missing_step_and_too_few_criteria(rubric):
    bronze = award_rule(rubric, "Bronze")
    need = dict(bronze.min_criteria_at)["bronze"]
    entries = [(ev("only", when=month(0)), cls(rubric, {GOALS: 1.0}, bronze.steps[:-1]))]
    scored = roll(rubric, entries)
    assert scored.award.level is None
    assert scored.award.reasons == ("No award level is met yet.",)
    assert scored.award.blockers == (
        f"Bronze: steps {bronze.steps[-1]} not evidenced",
        f"Bronze: 1 criterion at bronze or above, {need} needed",  # one criterion, in the singular
    )


# -- validators' overrides --------------------------------------------------------------------------

def test_an_excluded_item_never_counts(rubric):
    entries = [(ev("a"), cls(rubric, {GOALS: 1.0, "actions_taken": 1.0}, (1, 2, 3)))]
    exclude = Override(item_id="a", action="exclude", criterion=GOALS, note="not theirs", by="AV", at=NOW)
    scored = roll(rubric, entries, [exclude])
    goals = scored.criterion(GOALS)
    assert goals.cited == () and goals.excluded == ("a",) and goals.score == 0.0 and goals.level == "none"
    assert [c.item_id for c in scored.criterion("actions_taken").cited] == ["a"]  # only that criterion
    assert [s.evidenced_by for s in scored.steps if s.number in (1, 2, 3)] == [("a",)] * 3

    everywhere = Override(item_id="a", action="exclude", criterion=None, note="spam", by="AV", at=NOW)
    scored = roll(rubric, entries, [everywhere])
    assert all(c.cited == () and c.excluded == ("a",) for c in scored.criteria)
    assert all(s.evidenced_by == () for s in scored.steps)  # nor does it evidence a step


def test_an_included_item_counts_fully(rubric):
    include = Override(item_id="a", action="include", criterion=GOALS, note="photo shows it", by="AV", at=NOW)
    scored = roll(rubric, [(ev("a"), cls(rubric, {GOALS: 0.0}))], [include]).criterion(GOALS)
    (cited,) = scored.cited
    assert cited.overridden and cited.item_score == 1.0 and cited.contribution == 1.0
    assert "validator included" in cited.signals
    assert any("strongest scores 1.00 (included by a validator)" in r for r in scored.reasons)
    assert scored.score == expected(rubric, [1.0])

    # The latest decision wins.
    later = Override(item_id="a", action="exclude", criterion=GOALS, note="on reflection, no", by="AV",
                     at=NOW + dt.timedelta(hours=1))
    assert roll(rubric, [(ev("a"), cls(rubric, {GOALS: 0.0}))], [later, include]).criterion(GOALS).cited == ()


def test_an_included_hub_page_is_not_discounted_but_a_machine_scored_one_is(rubric):
    r = rubric.rollup
    assert r.hub_factor < 1.0
    children = [(ev(f"post{n}", url=f"https://example.org/news/post-{n}/"), cls(rubric)) for n in range(3)]
    hub = ev("index", url="https://example.org/news/")
    machine = roll(rubric, children + [(hub, cls(rubric, {GOALS: 1.0}))]).criterion(GOALS)
    assert machine.cited[0].contribution == pytest.approx(r.hub_factor, abs=1e-4)
    include = Override(item_id="index", action="include", criterion=None, note="the index itself", by="AV", at=NOW)
    forced = roll(rubric, children + [(hub, cls(rubric, {GOALS: 1.0}))], [include]).criterion(GOALS)
    assert forced.cited[0].contribution == 1.0 and forced.cited[0].overridden


def test_a_step_lists_its_strongest_evidence_first(rubric):
    """The dossier names a step's first few items: they should be the ones a validator would cite."""
    step = next(t for t in rubric.steps if t.criteria)
    weak, strong, stronger = (cls(rubric, {step.criteria[0]: s}, steps=[int(step.key)]) for s in (0.55, 0.8, 0.95))
    result = roll(rubric, [(ev("weak"), weak), (ev("strong"), strong), (ev("stronger"), stronger)])
    status = next(s for s in result.steps if s.number == int(step.key))
    assert status.evidenced_by == ("stronger", "strong", "weak")

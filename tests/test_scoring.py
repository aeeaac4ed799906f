"""The scorer: criteria told apart as a reader would, roll-up with reasons, overrides that win."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from scoring import Evidence, Override, classify_evidence, classify_text, describe_changes, parse_rubric, score_organisation
from scoring.rubric import RubricError
from harvester.config.classifier import load_classifier, packaged_classifier_path
from tests.conftest import PROJECT

MODEL = load_classifier(packaged_classifier_path())

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def rubric():
    return parse_rubric(tomllib.loads((PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8")))


def test_every_label_cites_the_passage_that_carried_it(rubric):
    text = ("Welcome to our school. Our equality objectives: by July 2027 we aim to raise attendance at "
            "cultural events to 80%.\nSchool dinners this week: pasta bake.")
    result = classify_text(text, rubric, MODEL)
    assert "goals_set" in result.labels(rubric.label_threshold)
    hit = result.criteria["goals_set"].signals[0]
    assert [text[s:e] for s, e in hit.spans] == [
        "Our equality objectives: by July 2027 we aim to raise attendance at cultural events to 80%."]
    assert hit.quote in text and all(text[s:e] in hit.quote for s, e in hit.spans)
    assert hit.terms and "weighed most" in hit.explain


def test_the_words_that_weighed_most_read_as_words_not_feature_names(rubric):
    from scoring.features import CUES, READABLE

    assert set(CUES) <= set(READABLE)
    text = ("In our 2025 survey 84% of pupils said they feel they belong, up from 71% in 2023. We found that "
            "boys were less likely to say so, and we will run a listening project by July 2026.")
    terms = [t for res in classify_text(text, rubric, MODEL).criteria.values() for h in res.signals for t in h.terms]
    assert terms
    assert not any("~" in t or "pctnum" in t or "yearnum" in t for t in terms), terms


def test_a_label_on_a_long_page_marks_the_sentence_that_carried_it_not_the_whole_passage(rubric):
    evidence = "In our summer survey 92% of pupils said they feel they belong at school."
    text = ("Welcome to our school website. Our office is open from 8am to 4pm on weekdays. "
            f"Uniform can be ordered online from our supplier. {evidence} "
            "Please remember that PE kit must be named. The car park is for staff only.")
    hit = classify_text(text, rubric, MODEL).criteria["quiz_outcomes"].signals[0]
    assert [text[s:e] for s, e in hit.spans] == [evidence]
    assert evidence in hit.quote and len(hit.quote) > len(evidence)  # the passage around it, for context


@pytest.mark.parametrize("noise", [
    "Term dates 2026-27: autumn term starts on Wednesday 3 September and ends on Friday 19 December.",
    "We use cookies to make this website work. Accept all cookies or reject non-essential cookies.",
    "Menu: Monday pasta bake, Tuesday roast chicken, Wednesday fish fingers. Jacket potatoes daily.",
    "Home | About us | News | Contact | Privacy policy | Accessibility statement",
])
def test_noise_scores_nothing(rubric, noise):
    assert classify_text(noise, rubric, MODEL).labels(rubric.label_threshold) == []


def test_a_survey_that_is_not_about_cohesion_counts_for_little(rubric):
    on = classify_text("Our cultural cohesion survey: 72% of parents said they feel they belong.", rubric, MODEL)
    off = classify_text("Our customer survey: 72% of customers said they liked the new sourdough.", rubric, MODEL)
    assert off.criteria["quiz_outcomes"].score < on.criteria["quiz_outcomes"].score / 2


@pytest.mark.parametrize("text, criterion", [
    ("92% of pupils said they feel safe at school and 88% that adults listen to them.", "quiz_outcomes"),
    ("This term we trained every lunchtime supervisor in de-escalation and set up a buddy bench.", "actions_taken"),
])
def test_evidence_that_names_no_topic_word_still_counts(rubric, text, criterion):
    """The labelling guide's own kind of example: the topic list must not throw real evidence away."""
    assert criterion in classify_text(text, rubric, MODEL).labels(rubric.label_threshold)


def item(n: int, text: str, month: int, platform: str = "website") -> Evidence:
    return Evidence(id=f"i{n}", org_id="org", platform=platform, title="", text=text,
                    url=f"https://example.org/{n}/", published=dt.datetime(2026, month, 1, tzinfo=dt.timezone.utc))


GOALS = "Our equality objectives: by July 2027 we aim to raise attendance at cultural events to 80%."


def rollup(rubric, items, overrides=()):
    classes = {i.id: classify_evidence(i, rubric, MODEL) for i in items}
    return score_organisation("org", items, classes, list(overrides), rubric, NOW)


def test_more_distinct_evidence_across_months_scores_higher_with_diminishing_returns(rubric):
    one = rollup(rubric, [item(1, GOALS, 5)]).criterion("goals_set")
    more = ["Our inclusion targets for 2027: we will translate every letter home into the top five languages by March 2027.",
            "Our cohesion action plan sets the goal that by September 2027 half of our governors will have had training."]
    three = rollup(rubric, [item(1, GOALS, 5), item(2, more[0], 7), item(3, more[1], 9, "mastodon")]).criterion("goals_set")
    assert three.score > one.score
    assert [c.contribution for c in three.cited] == sorted((c.contribution for c in three.cited), reverse=True)
    assert "3 distinct items" in three.reasons[0] and "3 months" in three.reasons[0]


def test_the_same_sentence_on_several_pages_counts_once(rubric):
    teaser = "Latest news: " + GOALS + " Read more."
    scored = rollup(rubric, [item(1, GOALS, 5), item(2, teaser, 5), item(3, GOALS, 6, "mastodon")])
    assert len(scored.criterion("goals_set").cited) == 1


def test_the_same_link_counts_once(rubric):
    twice = [item(1, GOALS, 5), Evidence(id="feed", org_id="org", platform="feed", title="", text=GOALS,
                                           url="https://example.org/1", published=dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc))]
    assert len(rollup(rubric, twice).criterion("goals_set").cited) == 1


def test_overrides_win_and_survive_a_rubric_edit(rubric):
    items = [item(1, GOALS, 5), item(2, "Sports day results: blue house won the relay.", 6)]
    exclude = Override(item_id="i1", action="exclude", criterion="goals_set", note="not theirs", by="AV", at=NOW)
    include = Override(item_id="i2", action="include", criterion="actions_taken", note="photo shows it", by="AV", at=NOW)
    scored = rollup(rubric, items, [exclude, include])
    assert scored.criterion("goals_set").cited == ()
    assert scored.criterion("goals_set").excluded == ("i1",)
    assert [c.item_id for c in scored.criterion("actions_taken").cited] == ["i2"]
    assert scored.criterion("actions_taken").cited[0].overridden

    data = tomllib.loads((PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8"))
    data["version"] = "edited"
    data["rollup"]["month_bonus"] = 0.05
    edited = parse_rubric(data)
    rescored = rollup(edited, items, [exclude, include])
    assert rescored.rubric_version == "edited"
    assert rescored.criterion("goals_set").cited == ()
    assert [c.item_id for c in rescored.criterion("actions_taken").cited] == ["i2"]


def test_award_needs_every_requirement_and_names_what_blocks(rubric):
    scored = rollup(rubric, [item(1, GOALS, 5)])
    assert scored.award.level is None
    assert any(b.startswith("Bronze:") and "steps" in b for b in scored.award.blockers)


def test_changes_are_described(rubric):
    before = rollup(rubric, [item(1, GOALS, 5)])
    after = rollup(rubric, [item(1, GOALS, 5), item(2, GOALS, 8)])
    lines = describe_changes(before, after)
    assert any("Goals set" in line and "newly cited i2" in line for line in lines)
    assert describe_changes(after, after) == []


def test_rubric_errors_name_the_field():
    data = tomllib.loads((PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8"))
    del data["criteria"]["progress_shared"]
    with pytest.raises(RubricError) as err:
        parse_rubric(data)
    assert err.value.field == "criteria.progress_shared"

    data = tomllib.loads((PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8"))
    data["rollup"]["recency_floor"] = 0.0  # old evidence would count nothing, and undated evidence with it
    with pytest.raises(RubricError) as err:
        parse_rubric(data)
    assert err.value.field == "rollup.recency_floor"


def test_a_news_index_counts_less_than_the_posts_it_lists(rubric):
    teaser = "Latest: read our new equality objectives and the targets we have set ourselves for 2027 and beyond."
    posts = [Evidence(id=f"p{n}", org_id="org", platform="website", title="", text=text,
                      url=f"https://example.org/news/2026/0{n}/post-{n}/",
                      published=dt.datetime(2026, n, 1, tzinfo=dt.timezone.utc))
             for n, text in ((3, "Sports day results."), (4, "New lunch menu."), (5, GOALS))]
    index = Evidence(id="index", org_id="org", platform="website", title="News", text=teaser,
                     url="https://example.org/news/", published=dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc))
    cited = rollup(rubric, posts + [index]).criterion("goals_set").cited
    assert [c.item_id for c in cited] == ["p5", "index"]
    assert cited[1].contribution < cited[1].item_score * 0.35  # halved as a hub (0.5), decayed as a repeat (0.6)


@pytest.mark.parametrize("text, step", [
    ("We are excited to be one of the first schools in the city to register and start our work towards "
     "the Bronze level of the Cultural Cohesion Quality Mark.", 1),
    ("Our team is making steady progress towards the CCQM this year.", 1),
    ("We are proud to have been credited with the Cultural Cohesion Bronze award, which shows our "
     "commitment to diversity.", 1),
    ("Staff training on unconscious bias took place in October, with open and honest discussions "
     "about culture.", 2),
    ("It involves threading the principles of equality through all areas of school life, in every year "
     "group from Nursery to Year 6.", 3),
    ("The Silver award for the CCQM reflects a whole school approach to inclusion.", 3),
])
def test_foundation_steps_are_recognised_in_the_words_organisations_use(rubric, text, step):
    assert step in classify_text(text, rubric, MODEL).steps


@pytest.mark.parametrize("text", [
    "We value diversity and aim to achieve the Bronze award for Healthy Schools next year.",
    "We are working towards achieving the Bronze Level of the Cultural Cohesion Quality Mark.",
])
def test_an_award_not_yet_held_or_of_another_scheme_does_not_evidence_everyone_signed_up(rubric, text):
    assert 3 not in classify_text(text, rubric, MODEL).steps


@pytest.mark.parametrize("text, claimed", [
    ("We are proud to have been credited with the Cultural Cohesion Bronze award.", {1, 2, 3}),
    ("In June we achieved the Silver level of the Cultural Cohesion Quality Mark!", {1, 2, 3, 4, 5}),
    ("We achieved our Bronze award of the CCQM last year and are now working towards Silver.", {1, 2, 3}),
    ("The school has been awarded the CCQM Gold award.", set(range(1, 8))),
    ("The Cultural Cohesion Quality Mark (Silver) was awarded to us in May.", {1, 2, 3, 4, 5}),
    ("The CCQM Silver award is given to organisations that show progress.", set()),
    ("We aim to achieve the Silver level of the CCQM by the summer.", set()),
    ("We are working towards the Gold award of the Cultural Cohesion Quality Mark.", set()),
    ("We achieved the Silver award for Healthy Schools.", set()),
    # Other ways organisations say they hold it...
    ("We are proud to be the first academy in the city to achieve the Silver Award for the Cultural "
     "Cohesion Quality Mark (CCQM).", {1, 2, 3, 4, 5}),
    ("The charity was the first in the region to be formally awarded the Bronze CCQM.", {1, 2, 3}),
    ("Our nursery now holds the Gold Cultural Cohesion Quality Mark.", set(range(1, 8))),
    ("The trust holds the Cultural Cohesion Quality Mark (CCQM) at Silver level.", {1, 2, 3, 4, 5}),
    ("Our head teacher was presented with our Bronze CCQM certificate by the Lord Mayor.", {1, 2, 3}),
    ("We are now a CCQM Bronze school!", {1, 2, 3}),
    ("We are proud to be a Silver CCQM organisation.", {1, 2, 3, 4, 5}),
    ("WE HAVE ACHIEVED THE CCQM SILVER AWARD!", {1, 2, 3, 4, 5}),
    # ...and ways they say they hope to.
    ("Our ambition is to be the first school in the city to achieve the Gold CCQM.", set()),
    ("We aim to become the first mosque in the county to achieve the Silver CCQM.", set()),
    ("Our goal is to become a CCQM Gold school by 2027.", set()),
    ("We look forward to receiving our Silver CCQM award in the summer.", set()),
    ("Our application is in, and we would be delighted to receive the Silver CCQM.", set()),
    ("We will hold an assembly about our CCQM Bronze journey.", set()),
    # ...and medals, stars and teams that happen to be gold in a sentence about the scheme.
    ("Congratulations to Year 5, who received gold stars during our Cultural Cohesion week.", set()),
    ("Pupils were awarded gold certificates at our CCQM celebration assembly.", set()),
    ("Our Silver team achieved first place in the cultural cohesion quiz.", set()),
    ("At our CCQM celebration, Year 4 received gold for their display about faiths.", set()),
])
def test_an_award_the_organisation_says_it_holds_evidences_that_awards_own_steps(rubric, text, claimed):
    assert rubric.claimed_steps(text) == claimed
    result = classify_text(text, rubric, MODEL)
    assert claimed <= set(result.steps) and rubric.award_steps(result.claims) == claimed


def test_a_claim_pattern_must_say_which_award_it_reads():
    data = tomllib.loads((PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8"))
    data["claims"]["patterns"] = [r"\bachieved (bronze|silver|gold)\b"]
    with pytest.raises(RubricError) as err:
        parse_rubric(data)
    assert err.value.field == "claims.patterns[0]"


def test_claim_patterns_of_a_validators_own_may_name_the_same_groups():
    data = tomllib.loads((PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8"))
    data["claims"]["patterns"] = [r"\b(?P<verb>achieved) (the )?(?P<level>silver) ccqm",
                                  r"\b(?P<verb>gained) (the )?(?P<level>gold) ccqm"]
    assert parse_rubric(data).claimed_steps("We achieved the Silver CCQM.") == {1, 2, 3, 4, 5}


def test_a_school_with_equality_pages_but_no_part_in_the_scheme_gets_no_award(rubric):
    """Foundation step 1 is the scheme's own: objectives and actions alone are no CCQM award."""
    pages = [GOALS, "We celebrated Diwali and Eid with assemblies, and trained all staff in anti-racism.",
             "Our equality objectives for 2024-2028 aim to narrow the attainment gap for disadvantaged pupils."]
    scored = rollup(rubric, [item(n, text, 5 + n) for n, text in enumerate(pages, start=1)])
    assert scored.award.level is None
    assert any("steps 1" in b for b in scored.award.blockers)


@pytest.mark.parametrize("pattern, text, matches", [
    (r"\bccqm\b", "Our CCQM journey", True),            # lower-case pattern, capitals in the text
    (r"\bCCQM\b", "our ccqm journey", True),            # a capital in the pattern: still case-insensitive
    (r"\Wccqm\S", "the CCQM! award", True),             # upper-case escapes keep their meaning
    (r"\bccqm\b", "iccqmx", False),
])
def test_rubric_patterns_match_case_insensitively(pattern, text, matches):
    import re

    from scoring.rubric import any_of
    assert any_of((re.compile(pattern),)).search(text) is matches


@pytest.mark.parametrize("patterns, text", [
    ((r"\bpledge", r"\bcohesion\b", r"quality mark"), "we signed the pledge"),
    ((r"\bpledge", r"\bcohesion\b"), "our sportspledge and cohesiony"),       # no boundary, no match
    ((r"\bfoo|bar", r"\bbaz"), "crowbar"),                                   # an alternation at the top level
    ((r"\bfoo|bar", r"\bbaz"), "xfoo"),
    ((r"\b[(]x|bar", r"\bbaz"), "crowbar"),                                   # a bracket in a class
    ((r"\b(?:a|b)c", r"\b\d+%"), "9% said"),
    ((r"\b(?:a|b)c", r"\b\d+%"), "xbc"),
])
def test_rubric_patterns_grouped_for_speed_match_as_each_alone(patterns, text):
    import re

    from scoring.rubric import any_of
    compiled = tuple(re.compile(p) for p in patterns)
    alone = any(p.search(text.lower()) for p in compiled)
    assert any_of(compiled).search(text) is alone


def test_a_later_steps_words_count_only_in_text_that_evidences_something(rubric):
    """Steps 4 to 7 have criteria; their patterns alone, in a page that evidences none, are no step."""
    policy = ("Privacy notice. We process special category data such as racial or ethnic origin and religion "
              "only where the law allows. Appropriate security measures are put in place to protect it, and a "
              "data protection officer oversees how it is handled.")
    result = classify_text(policy, rubric, MODEL)
    assert any(step.matcher.search(policy) for step in rubric.steps if step.key == "6")  # the step's words are there
    assert result.on_topic and not result.labels(rubric.label_threshold)
    assert not set(result.steps) & {4, 5, 6, 7}
    action = "This term we introduced a prayer room and trained all staff in anti-racism, with pupils leading assemblies."
    assert 6 in classify_text(action, rubric, MODEL).steps


def test_guiding_areas_are_where_evidence_lies(rubric):
    """A notice that names governors evidences nothing, so it is in no guiding area; an action by them is."""
    notice = ("Governors' privacy notice. The governing body processes special category data such as ethnic "
              "origin and religion only where the law allows, and the clerk keeps the register of interests.")
    result = classify_text(notice, rubric, MODEL)
    assert any(area.matcher.search(notice) for area in rubric.areas)  # the areas' words are there
    assert result.on_topic and not result.labels(rubric.label_threshold) and result.areas == ()
    action = ("This year our governors completed anti-racism training, and the governing body appointed a link "
              "governor for equality who reviews our inclusion plan each term.")
    evidence = classify_text(action, rubric, MODEL)
    assert evidence.labels(rubric.label_threshold) and "governance" in evidence.areas


def test_a_page_is_read_with_the_very_features_the_classifier_was_trained_on():
    """Scoring reads a page's sentences all at once (`learned._features`), the training reads one
    excerpt at a time (`features.terms`): if the two drift apart, every score quietly worsens."""
    from collections import Counter

    from harvester.app.train import load_set
    from scoring.features import terms
    from scoring.learned import _features

    texts = [e.text for e in load_set(PROJECT / "fixtures" / "labelled")][::20]
    texts += ["Ünïcödé café: 50 % of staff said yes\x00 and 1,200 pupils", "   ", "x", "2025\n\n1999 -- 45.5%"]
    occurrences, bounds = _features(texts, MODEL)
    assert len(bounds) == len(texts) + 1
    for text, start, end in zip(texts, bounds, bounds[1:]):
        expected = Counter({MODEL.index[t]: n for t, n in terms(text).items() if t in MODEL.index})
        assert Counter(occurrences[start:end].tolist()) == expected, text[:80]


def test_text_off_the_scheme_s_topic_keeps_less_of_its_score_and_says_so(rubric):
    """The topic gate: a passage the classifier reads as off the scheme's topic (a football
    result, a breakfast club) keeps only part of each criterion's score, and its explanation says
    how much; a passage on the topic keeps all of it. Everyday site text in the words of doing and
    improving is the commonest false evidence a validator meets."""
    from scoring.learned import judge

    off = ("Our under-11 football team won the county cup, and we launched a new breakfast club and trained all "
           "coaches.")
    on = ("This year we held an assembly for Black History Month, our pupils visited the local mosque and "
          "gurdwara, and we translated our newsletters into Polish and Urdu for new families.")
    assert MODEL.gate > 0
    off_verdicts, on_verdicts = judge(off, MODEL), judge(on, MODEL)
    assert all(v.topic < 1 for v in off_verdicts.values())
    assert all(v.topic == 1 for v in on_verdicts.values())
    explained = classify_text(off, rubric, MODEL).criteria["actions_taken"].signals[0].explain
    assert "off the scheme's topic" in explained and f"{off_verdicts['actions_taken'].topic:.0%}" in explained
    assert "off the scheme's topic" not in classify_text(on, rubric, MODEL).criteria["actions_taken"].signals[0].explain
    assert on_verdicts["actions_taken"].score > off_verdicts["actions_taken"].score

"""Dossiers render untrusted harvested text as text, never as markup or live links."""

from __future__ import annotations

import datetime as dt

from lxml import html

from harvester.app.dossiers import write_dossiers
from harvester.items import Item, Snapshot
from harvester.store.db import open_store
from harvester.app.assess import score
from harvester.config.settings import load_settings
from reports import highlight, safe_href
from tests.conftest import write_classifier, write_config

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
ORG = """
[[organisation]]
id = "hostile"
name = "Hostile <b>Org</b>"
kind = "other"
registered = 2026-01-01
step = 3
website = "https://hostile.example/"
"""
PAYLOADS = ['<script>window.pwned=1</script>', '"><img src=x onerror=alert(1)>', "<svg onload=alert(1)>",
            "</textarea><iframe src=javascript:alert(1)>"]


def write_hostile_dossier(tmp_path, payloads=PAYLOADS):
    """A dossier whose harvested items carry the given payloads; returns its path."""
    config = write_config(tmp_path / "config", organisations=ORG)
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})
    with open_store(settings.db_path) as store:
        for n, (payload, url) in enumerate(zip(payloads, ["javascript:alert(1)", "https://hostile.example/a\" onmouseover=\"x",
                                                          "data:text/html,<script>x</script>", "https://hostile.example/ok"])):
            text = f"Our equality objectives: by July 2027 we aim to do better. {payload} We asked 80 staff; 60% said yes."
            store.save_item(Item(org_id="hostile", source_id="hostile/website/x", platform="website", kind="page",
                                 native_id=f"n{n}", url=url, title=f"Title {payload}", text=text, published=NOW,
                                 snapshot=Snapshot(url="https://hostile.example/", fetched_at=NOW, status=200,
                                                   content_type="text/html", body=payload.encode())), NOW)
    score(settings, settings.organisations, now=NOW)
    index = write_dossiers(settings, settings.organisations)
    return index.parent / "hostile.html"


def test_harvested_payloads_are_escaped_and_bad_links_dropped(tmp_path):
    dossier = write_hostile_dossier(tmp_path)
    index = dossier.parent / "index.html"
    page_html = dossier.read_text(encoding="utf-8")
    tree = html.fromstring(page_html)
    assert not tree.xpath("//script | //iframe | //img | //svg//*[@onload] | //*[@onerror] | //*[@onmouseover]")
    assert len(tree.xpath("//svg")) == 1  # only our own timeline
    hrefs = [a.get("href") for a in tree.iter("a")]
    rows = {r.get("id") for r in tree.xpath('//tr[starts-with(@id, "item-")]')}
    assert all(h.startswith(("https://", "index.html")) or h[1:] in rows for h in hrefs), hrefs  # or a row of ours
    assert any(h == "https://hostile.example/ok" for h in hrefs)
    assert all(a.get("rel") == "noopener noreferrer nofollow" for a in tree.iter("a") if a.get("href").startswith("http"))
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page_html
    assert "Hostile &lt;b&gt;Org&lt;/b&gt;" in index.read_text(encoding="utf-8")
    csp = tree.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content')[0]
    assert "default-src 'none'" in csp


def test_highlight_marks_spans_in_a_window():
    text = "Intro. " * 30 + "We asked 214 pupils and 68% said yes." + " Tail." * 30
    start = text.index("We asked")
    segments = highlight(text, [(start, start + 8)], width=120)
    assert [s.text for s in segments if s.mark] == ["We asked"]
    assert segments[0].text == "…" and segments[-1].text == "…"
    assert sum(len(s.text) for s in segments if s.text != "…") <= 120


def test_a_quoted_window_never_opens_or_closes_on_half_a_word():
    text = " ".join(f"word{n:03d}" for n in range(200))
    start = text.index("word100")
    for shift in range(8):  # wherever the window would fall
        segments = highlight(text, [(start, start + 15 + shift)], width=120 + shift)
        shown = "".join(s.text for s in segments if s.text != "…").split()
        assert shown and all(len(w) == 7 and w.startswith("word") for w in shown), shown


def test_safe_href_allows_only_http():
    assert safe_href("https://example.org/x") == "https://example.org/x"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example/", "/relative", "JaVaScRiPt:alert(1)", None):
        assert safe_href(bad) is None


def test_index_lists_award_holders_above_organisations_only_starting():
    from reports.build import index_page
    from reports.model import IndexRow
    from reports.render import render_index

    def row(org_id, award, strength):
        return IndexRow(org_id=org_id, name=org_id.title(), kind="school", href=f"{org_id}.html", levels=(),
                        award=award, last_harvest="", items=1, problems=(), strength=strength)

    # registry order: a starter first, the Silver holder last
    rows = [row("starter", None, 0.30), row("bronze-weak", "Bronze", 0.35), row("bronze-strong", "Bronze", 0.60),
            row("silver", "Silver", 0.55), row("unscored", None, 0.0)]
    page = index_page(rows, (), NOW)
    assert [r.org_id for r in page.rows] == ["silver", "bronze-strong", "bronze-weak", "starter", "unscored"]
    text = html.fromstring(render_index(page)).text_content()
    assert text.index("Silver") < text.index("Bronze-Strong") < text.index("Starter")


HOLDER = """
[[organisation]]
id = "holder"
name = "Holder Primary"
kind = "school"
registered = 2025-01-01
step = 5
website = "https://holder.example/"
"""


def test_the_dossier_says_which_award_the_organisation_says_it_holds_and_where(tmp_path):
    """The scheme's own records can confirm a claimed award: the validator sees it, and the item."""
    from harvester.app.overrides import add_override

    config = write_config(tmp_path / "config", organisations=HOLDER)
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})
    pages = {"news": ("Silver at last", "We are proud to be the first school in the city to achieve the Silver "
                                        "Award for the Cultural Cohesion Quality Mark (CCQM)."),
             "menu": ("Lunch menu", "Pasta bake on Monday, curry on Tuesday.")}
    _store_pages(settings, pages)
    score(settings, settings.organisations, now=NOW)
    dossier = write_dossiers(settings, settings.organisations).parent / "holder.html"
    facts = html.fromstring(dossier.read_text(encoding="utf-8")).xpath('//dl[contains(@class, "facts")]')[0]
    said = facts.xpath('dt[. = "Says it holds"]/following-sibling::dd[1]')[0]
    assert "the CCQM Silver award" in said.text_content()
    (link,) = said.xpath(".//a")
    assert link.text_content() == "Silver at last" and link.get("href").startswith("#item-")

    add_override(settings, "holder", "https://holder.example/news", include=None, exclude="*",
                 note="not this school's award", by="AV")
    score(settings, settings.organisations, now=NOW)
    dossier = write_dossiers(settings, settings.organisations).parent / "holder.html"
    assert "Says it holds" not in dossier.read_text(encoding="utf-8")  # a validator excluded the item


def test_each_citation_says_how_often_items_scored_like_it_were_evidence_in_testing(tmp_path):
    """A validator weighs a cited item by how far the classifier's score for it can be trusted: the
    artefact's cross-validated figures, per band of score, are shown with each machine citation, and
    a band more often wrong than right is marked borderline. A validator's inclusion shows none."""
    from harvester.app.overrides import add_override

    config = write_config(tmp_path / "config", organisations=HOLDER)
    write_classifier(config, lambda artefact: artefact["cv"].update(bands=[
        {"from": 0.5, "to": 0.9, "evidence": 0.3, "items": 100}, {"from": 0.9, "to": 1.0, "evidence": 0.9, "items": 100}]))
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})
    pages = {"diwali": "We celebrated Diwali with dance workshops and a whole-school assembly, and trained all "
                       "staff in anti-racism.",
             "coffee": "We held a coffee morning for parents on Friday.",
             "menu": "Pasta bake on Monday, curry on Tuesday."}
    _store_pages(settings, {native: (native, text) for native, text in pages.items()})
    add_override(settings, "holder", "https://holder.example/menu", include="actions_taken", exclude=None,
                 note="the kitchen's Diwali menu, seen on the visit", by="AV")
    score(settings, settings.organisations, now=NOW)
    dossier = write_dossiers(settings, settings.organisations).parent / "holder.html"
    card = html.fromstring(dossier.read_text(encoding="utf-8")).xpath('//*[@id="criterion-actions_taken"]')[0]
    said = {li.xpath(".//strong")[0].text_content(): li.xpath('.//span[contains(@class, "muted")]')[0].text_content()
            for li in card.xpath('.//ol[@class="cites"]/li')}
    assert set(said) == {"diwali", "coffee", "menu"}, said
    assert "9 in 10 scored so were evidence in testing" in said["diwali"] and "borderline" not in said["diwali"]
    assert "borderline: 3 in 10 scored so were evidence in testing" in said["coffee"]
    assert "in testing" not in said["menu"] and "included by a validator" in said["menu"]


def test_a_citation_read_as_off_the_scheme_s_topic_says_how_much_of_its_score_it_kept(tmp_path):
    """Sports days and breakfast clubs are told in the words of evidence; the classifier's topic
    gate lowers such a passage's scores, and when one is still cited the dossier says so beside it, so a
    validator knows why it ranks below the Diwali assembly."""
    config = write_config(tmp_path / "config", organisations=HOLDER)
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})
    pages = {"diwali": "We celebrated Diwali with dance workshops and a whole-school assembly, and trained all "
                       "staff in anti-racism.",
             "cup": "We held a whole-school sports day, launched a new breakfast club and trained all our staff in "
                    "first aid."}
    _store_pages(settings, {native: (native, text) for native, text in pages.items()})
    score(settings, settings.organisations, now=NOW)
    dossier = write_dossiers(settings, settings.organisations).parent / "holder.html"
    card = html.fromstring(dossier.read_text(encoding="utf-8")).xpath('//*[@id="criterion-actions_taken"]')[0]
    said = {li.xpath(".//strong")[0].text_content(): li.xpath('.//span[contains(@class, "muted")]')[-1].text_content()
            for li in card.xpath('.//ol[@class="cites"]/li')}
    assert set(said) == {"diwali", "cup"}, said
    assert "Read as off the scheme's topic: it keeps" in said["cup"] and "% of its score" in said["cup"]
    assert "off the scheme's topic" not in said["diwali"]


def test_a_decision_on_text_that_has_changed_since_is_marked_possibly_stale(tmp_path):
    """A validator's exclusion judged the words of the day: when the page is rewritten, the dossier
    says so beside the decision, rather than silently keeping or dropping it."""
    from harvester.app.overrides import add_override

    config = write_config(tmp_path / "config", organisations=HOLDER)
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})

    def publish(text: str) -> None:
        with open_store(settings.db_path) as store:
            store.save_item(Item(org_id="holder", source_id="holder/website/x", platform="website", kind="page",
                                 native_id="plan", url="https://holder.example/plan", title="Our plan", text=text,
                                 published=NOW), NOW)

    def decision_row() -> str:
        dossier = write_dossiers(settings, settings.organisations).parent / "holder.html"
        page = html.fromstring(dossier.read_text(encoding="utf-8"))
        return page.xpath('//*[@id="overrides-h"]/following::tbody[1]/tr')[0].text_content()

    publish("Our equality objectives: by July 2027 we will train every member of staff in anti-racist practice.")
    score(settings, settings.organisations, now=NOW)
    (decided,) = add_override(settings, "holder", "https://holder.example/plan", include=None, exclude="goals_set",
                              note="copied from the trust's plan", by="AV")
    assert dict(decided.machine)["goals_set"] >= 0.5  # the machine counted it when the validator overruled it
    row = decision_row()
    assert f"{dict(decided.machine)['goals_set']:.2f}, counted" in row and "stale" not in row

    publish("Our equality objectives for 2027 are being written with our pupils and will be published in March.")
    score(settings, settings.organisations, now=NOW)
    assert "possibly stale: the item's text has changed since this decision" in decision_row()


def test_a_decision_says_when_the_machine_no_longer_reads_the_item_as_it_did():
    from reports.build import _since
    from scoring import Classification, CriterionResult, Override

    then = Override(item_id="a", action="exclude", criterion="goals_set", note="", by="AV", at=NOW,
                    machine=(("goals_set", 0.71), ("actions_taken", 0.2)), judged_text="h1")
    now = Classification(criteria={"goals_set": CriterionResult(score=0.31), "actions_taken": CriterionResult(0.8)})
    assert _since(then, None, now, 0.5) == "the machine's reading has changed: now goals_set 0.31, not counted"
    same = Classification(criteria={"goals_set": CriterionResult(score=0.66)})
    assert _since(then, None, same, 0.5) == ""


def test_evidence_dated_before_registration_is_flagged_and_still_counted(tmp_path):
    config = write_config(tmp_path / "config", organisations=HOLDER)  # registered 1 Jan 2025
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})
    pages = {"old": (dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc),
                     "This term we trained every member of staff in anti-racist practice."),
             "new": (NOW, "We held a Diwali assembly and celebrated with dance workshops for every class."),
             "undated": (None, "Our governors visited the mosque and the gurdwara with the school council.")}
    with open_store(settings.db_path) as store:
        for native, (published, text) in pages.items():
            store.save_item(Item(org_id="holder", source_id="holder/website/x", platform="website", kind="page",
                                 native_id=native, url=f"https://holder.example/{native}", title=native,
                                 text=text, published=published), NOW)
    score(settings, settings.organisations, now=NOW)
    dossier = html.fromstring((write_dossiers(settings, settings.organisations).parent / "holder.html")
                              .read_text(encoding="utf-8"))
    flagged = {row.xpath(".//a")[0].text_content() for row in dossier.xpath('//tr[starts-with(@id, "item-")]')
               if row.xpath('.//span[@class="before"]')}
    assert flagged == {"old"}
    card = dossier.xpath('//*[@id="criterion-actions_taken"]')[0]
    cited = {li.xpath(".//strong")[0].text_content(): li.text_content() for li in card.xpath('.//ol[@class="cites"]/li')}
    assert "old" in cited and "before registration" in cited["old"]  # it still counts
    assert "before registration" not in cited.get("new", "")


def _store_pages(settings, pages: dict[str, tuple[str, str]]) -> None:
    """Store the holder's website pages, each (title, text) under its name, dated NOW."""
    with open_store(settings.db_path) as store:
        for native, (title, text) in pages.items():
            store.save_item(Item(org_id="holder", source_id="holder/website/x", platform="website", kind="page",
                                 native_id=native, url=f"https://holder.example/{native}", title=title, text=text,
                                 published=NOW), NOW)


def test_an_organisation_that_says_it_holds_an_award_is_listed_above_one_only_starting(tmp_path):
    """A holder's web presence is often one page that says no more than that it holds the award: too
    little for the machine to recommend one, so a starter with more pages would rank above it on
    evidence alone. Its claim, in words the rubric reads as held, ranks it first among organisations
    at the same recommendation, and the index says which award it says it holds, for a validator to
    confirm in the scheme's records."""
    orgs = HOLDER + """
[[organisation]]
id = "starter"
name = "Starter Primary"
kind = "school"
registered = 2026-09-01
step = 1
website = "https://starter.example/"
"""
    config = write_config(tmp_path / "config", organisations=orgs)
    settings = load_settings(config, db=tmp_path / "db.duckdb", out=tmp_path / "out", env={})
    pages = {"holder": {"news": "We hold the Silver Award of the Cultural Cohesion Quality Mark (CCQM)."},
             "starter": {"diwali": "We celebrated Diwali with dance workshops and a whole-school assembly, and trained "
                                   "all staff in anti-racism.",
                         "survey": "We asked 214 pupils about belonging: 68% said they feel their culture is "
                                   "respected in school, up from 52% last year.",
                         "plan": "Our equality objective for 2027 is to increase the number of books by Black and "
                                 "Asian authors in our library to one in four."}}
    with open_store(settings.db_path) as store:
        for org, named in pages.items():
            for native, text in named.items():
                store.save_item(Item(org_id=org, source_id=f"{org}/website/x", platform="website", kind="page",
                                     native_id=native, url=f"https://{org}.example/{native}", title=native, text=text,
                                     published=None), NOW)
    outcomes = {o.org.id: o.after for o in score(settings, settings.organisations, now=NOW)}
    assert outcomes["holder"].award.level is None and outcomes["starter"].award.level is None
    strength = {org: sum(c.score for c in s.criteria) for org, s in outcomes.items()}
    assert strength["starter"] > strength["holder"]  # on evidence alone the starter would come first
    index = write_dossiers(settings, settings.organisations)
    rows = html.fromstring(index.read_text(encoding="utf-8")).xpath('//table[1]/tbody/tr')
    assert [r.xpath(".//a")[0].text_content() for r in rows] == ["Holder Primary", "Starter Primary"]
    assert "says it holds Silver" in rows[0].text_content() and "says it holds" not in rows[1].text_content()

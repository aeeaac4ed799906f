"""The one refresh use-case: harvest -> score -> dossiers, for the nightly job, `rescore` and the demo.

Every caller that does the whole round goes through `refresh`, so what a round does (and what is
hooked onto its end later, such as the nightly digest) is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harvester.app.assess import Progress, ScoreOutcome, score
from harvester.app.dossiers import write_dossiers
from harvester.app.harvest import HarvestReport, SourceOutcome, harvest
from harvester.config.registry import Organisation
from harvester.config.settings import Settings
from harvester.errors import InterruptedRun
from harvester.web.client import Http


@dataclass
class RefreshResult:
    report: HarvestReport | None  # None when the round did not harvest
    scores: list[ScoreOutcome]
    index: Path

    @property
    def failed(self) -> list[SourceOutcome]:
        return self.report.failed if self.report else []


def refresh(settings: Settings, orgs: tuple[Organisation, ...], *, harvest_first: bool = True,
            http: Http | None = None, on_source: Callable[[SourceOutcome], None] | None = None,
            on_classified: Progress | None = None) -> RefreshResult:
    """Harvest (unless told not to), score and write the dossiers of `orgs`."""
    everyone = set(orgs) == set(settings.organisations)  # a whole round also reads the scheme's mentions
    report = harvest(settings, orgs, http=http, on_source=on_source, scheme=everyone) if harvest_first else None
    if report is not None and report.interrupted:
        raise InterruptedRun(f"harvest {report.run_id} was stopped: {report.totals['new']} new items saved; "
                             "not scored. The next run carries on")
    scores = score(settings, orgs, on_classified=on_classified)
    index = write_dossiers(settings, orgs)
    return RefreshResult(report=report, scores=scores, index=index)

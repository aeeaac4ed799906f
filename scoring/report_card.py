"""The scorer's report card: each validator's standing decision set against the score the machine
had given the item when the validator made it (not today's: a model retrained on the decisions
would agree with them by construction)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from scoring.model import CRITERIA, Override
from scoring.score import standing_decisions


@dataclass(frozen=True)
class Agreement:
    """One criterion's decisions, as the machine had judged their items."""

    criterion: str
    agreed: int = 0  # included what it counted, or excluded what it did not count
    dropped: int = 0  # excluded what it counted: evidence it saw where there was none
    added: int = 0  # included what it did not count: evidence it missed

    @property
    def decided(self) -> int:
        return self.agreed + self.dropped + self.added


def agreement(overrides: Iterable[Override], counts_from: float) -> tuple[Agreement, ...]:
    """Per criterion, the standing decisions (the latest include or exclude per item and
    criterion) whose item the machine had scored, against whether it counted the item (a score of
    `counts_from` or more). An exclusion from every criterion is an overruling where the machine
    counted the item, and says nothing of the criteria it did not."""
    tally = {name: [0, 0, 0] for name in CRITERIA}
    for (_, name), o in standing_decisions(list(overrides)).items():
        scores = dict(o.machine)
        if name not in scores:
            continue
        counted = scores[name] >= counts_from
        if o.action == "include":
            tally[name][0 if counted else 2] += 1
        elif counted:
            tally[name][1] += 1
        elif o.criterion is not None:  # excluded from this criterion alone, which it did not count either
            tally[name][0] += 1
    return tuple(Agreement(name, *tally[name]) for name in CRITERIA)

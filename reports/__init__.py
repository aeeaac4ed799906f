"""Pure rendering: dossier and index view-models in, self-contained HTML out.

Templates get plain dataclasses and never query anything; Jinja2 autoescapes everything, so
harvested text (untrusted) can never become markup.
"""

from reports.model import (
    Bar, CitationView, CriterionCard, DossierPage, EvidenceView, IndexPage, IndexRow, OverrideView, Segment,
    SourceView, StepView, TimelineView,
)
from reports.render import render_dossier, render_index
from reports.snippet import highlight, safe_href
from reports.timeline import build_timeline

__all__ = [
    "Bar", "CitationView", "CriterionCard", "DossierPage", "EvidenceView", "IndexPage", "IndexRow",
    "OverrideView", "Segment", "SourceView", "StepView", "TimelineView", "render_dossier", "render_index",
    "highlight", "safe_href", "build_timeline",
]

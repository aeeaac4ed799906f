"""One Jinja2 environment, configured once: autoescape on, undefined names are errors."""

from __future__ import annotations

from functools import lru_cache

import jinja2

from reports.model import DossierPage, IndexPage


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,  # every template, whatever its name: harvested text is untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda value: f"{value * 100:.0f}"
    return env


def render_dossier(page: DossierPage) -> str:
    return environment().get_template("dossier.html.j2").render(page=page)


def render_index(page: IndexPage) -> str:
    return environment().get_template("index.html.j2").render(page=page)

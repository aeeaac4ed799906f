"""`ccqm demo`: the whole product on an embedded world, with nothing leaving the machine.

The demo world (websites, feeds, PDFs and social API bodies) and its config ship inside the
package, so `pip install ccqm` and `ccqm demo` work from any folder. It starts the world's
servers on 127.0.0.1 (`demo.server`), writes a config folder pointing the registry and the
platform settings at them (the demo's own settings allow loopback), and runs the same `refresh`
as the nightly job.

Facebook, Instagram and X want tokens, which the collectors read from the environment. So that
the demo needs none, `render_config` has the running world lend placeholder tokens for the
variables the demo's sources read (`META_PAGE_TOKEN`, `META_PAGE_TOKEN_<ORG>`, `X_BEARER_TOKEN`)
while the world is up; closing the world takes them back. They are only ever sent to the loopback
demo servers, and a token the user set is never replaced.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from harvester.app.harvest import SourceOutcome
from harvester.app.refresh import RefreshResult, refresh
from harvester.collectors.facebook import SCHEME_TOKEN, org_token_variable
from harvester.collectors.x import TOKEN_ENV as X_TOKEN
from harvester.config.registry import load_registry
from harvester.config.settings import default_rubric_path, load_settings
from harvester.demo.server import World, serve_world

DEMO = Path(__file__).resolve().parent
WORLD = DEMO / "world"
CONFIG = DEMO / "config"


def render_config(template_dir: Path, out_dir: Path, world: World, rubric: Path | None = None) -> Path:
    """Copy the demo config with the live server addresses filled in, and have `world` lend the
    demo's placeholder tokens until it closes (see the module's docstring)."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def fill(match: re.Match) -> str:
        key = match.group(1)
        if key.startswith("site:"):
            return world.sites[key[5:]]
        return {"mastodon": world.mastodon, "bluesky": world.bluesky, "graph": world.graph, "x": world.x}[key]

    for name in ("organisations.toml", "settings.toml"):
        text = (template_dir / name).read_text(encoding="utf-8")
        (out_dir / name).write_text(re.sub(r"\{\{([a-z:_-]+)\}\}", fill, text), encoding="utf-8")
    shutil.copyfile(rubric or default_rubric_path(), out_dir / "rubric.toml")
    # Demo-only placeholder credentials: they are only ever sent to the loopback demo servers (the
    # rendered settings point graph_api_url and x_api_url at them), are set only where the user has
    # no value of their own, and go away when the world closes. They live in this process's
    # environment meanwhile, so a config other than the demo's must not be harvested in the same
    # process while the world runs (only tests would).
    if world.graph and world.x:
        orgs = load_registry(out_dir / "organisations.toml")
        world.lend_env([SCHEME_TOKEN, X_TOKEN] + [org_token_variable(org.id) for org in orgs])
    return out_dir


def run_demo(out_dir: Path, *, db: Path | None = None, rubric: Path | None = None,
             progress: Callable[[int], Callable[[SourceOutcome], None]] | None = None) -> RefreshResult:
    """Serve, harvest, score and write dossiers; `progress(total)` gives a per-source callback."""
    out_dir.mkdir(parents=True, exist_ok=True)
    db = db or out_dir / "ccqm.duckdb"
    if db.exists():  # the world's ports change every run: each demo starts from an empty database
        db.unlink()
    with serve_world(WORLD) as world:
        config_dir = render_config(CONFIG, out_dir / "config", world, rubric)
        settings = load_settings(config_dir, db=db, out=out_dir / "dossiers", env={})
        total = sum(len(o.sources) for o in settings.organisations)
        return refresh(settings, settings.organisations, on_source=progress(total) if progress else None)

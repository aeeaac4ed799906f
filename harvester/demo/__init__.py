"""`ccqm demo`: the whole product on an embedded world, with nothing leaving the machine.

The demo world (websites, feeds, PDFs and social API bodies) and its config ship inside the
package, so `pip install ccqm` and `ccqm demo` work from any folder. It starts the world's
servers on 127.0.0.1 (`demo.server`), writes a config folder pointing the registry and the
platform settings at them (the demo's own settings allow loopback), and runs the same `refresh`
as the nightly job.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from harvester.app.harvest import SourceOutcome
from harvester.app.refresh import RefreshResult, refresh
from harvester.config.settings import default_rubric_path, load_settings
from harvester.demo.server import World, serve_world

DEMO = Path(__file__).resolve().parent
WORLD = DEMO / "world"
CONFIG = DEMO / "config"


def render_config(template_dir: Path, out_dir: Path, world: World, rubric: Path | None = None) -> Path:
    """Copy the demo config with the live server addresses filled in."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def fill(match: re.Match) -> str:
        key = match.group(1)
        if key.startswith("site:"):
            return world.sites[key[5:]]
        return {"mastodon": world.mastodon, "bluesky": world.bluesky}[key]

    for name in ("organisations.toml", "settings.toml"):
        text = (template_dir / name).read_text(encoding="utf-8")
        (out_dir / name).write_text(re.sub(r"\{\{([a-z:_-]+)\}\}", fill, text), encoding="utf-8")
    shutil.copyfile(rubric or default_rubric_path(), out_dir / "rubric.toml")
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

"""`ccqm demo`: the whole product on an embedded world, with nothing leaving the machine.

It starts the demo world's servers on 127.0.0.1, writes a config folder pointing the registry and
the platform settings at them (the demo's own settings allow loopback), and then runs the same
harvest, scoring and dossier functions as the nightly job.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harvester.assess import ScoreOutcome, score
from harvester.dossiers import write_dossiers
from harvester.errors import ConfigError
from harvester.pipeline import HarvestReport, SourceOutcome, harvest
from harvester.settings import load_settings
from harvester.world import World, serve_world

PROJECT = Path(__file__).resolve().parent.parent
DEMO = PROJECT / "fixtures" / "demo"


@dataclass
class DemoResult:
    index: Path
    report: HarvestReport
    scores: list[ScoreOutcome]
    config_dir: Path
    db_path: Path


def render_config(template_dir: Path, out_dir: Path, world: World, rubric: Path) -> Path:
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
    shutil.copyfile(rubric, out_dir / "rubric.toml")
    return out_dir


def run_demo(out_dir: Path, *, db: Path | None = None, world_dir: Path | None = None,
             rubric: Path | None = None,
             progress: Callable[[int], Callable[[SourceOutcome], None]] | None = None) -> DemoResult:
    """Serve, harvest, score and write dossiers; `progress(total)` gives a per-source callback."""
    world_dir = world_dir or DEMO / "world"
    rubric = rubric or PROJECT / "config" / "rubric.toml"
    if not world_dir.is_dir():
        raise ConfigError("demo world not found (run ccqm demo from a clone of the project)", file=str(world_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    db = db or out_dir / "ccqm.duckdb"
    if db.exists():  # the world's ports change every run: each demo starts from an empty database
        db.unlink()
    with serve_world(world_dir) as world:
        config_dir = render_config(DEMO / "config", out_dir / "config", world, rubric)
        settings = load_settings(config_dir, db=db, out=out_dir / "dossiers")
        total = sum(len(o.sources) for o in settings.organisations)
        report = harvest(settings, settings.organisations, on_source=progress(total) if progress else None)
    scores = score(settings, settings.organisations)
    index = write_dossiers(settings, settings.organisations)
    return DemoResult(index=index, report=report, scores=scores, config_dir=config_dir, db_path=settings.db_path)

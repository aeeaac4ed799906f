"""Shared fixtures: the demo world served on 127.0.0.1, a config pointing at it, a temp database."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.demo import DEMO, PROJECT, render_config
from harvester.settings import load_settings
from harvester.world import serve_world

SHARED = PROJECT.parent / "shared"


def shared_or_skip(*parts: str) -> Path:
    """A path under ../shared/, or a visible skip when it is not beside the project."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/ sits beside the project only in development and CI)")
    return path


@pytest.fixture(scope="session")
def world():
    with serve_world(DEMO / "world") as running:
        yield running


@pytest.fixture
def demo_settings(tmp_path, world):
    config = render_config(DEMO / "config", tmp_path / "config", world, PROJECT / "config" / "rubric.toml")
    return load_settings(config, db=tmp_path / "ccqm.duckdb", out=tmp_path / "dossiers", env={})


def write_config(folder: Path, *, organisations: str, settings: str = "", rubric: str | None = None) -> Path:
    """A config folder with the given files; the real rubric unless one is given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "organisations.toml").write_text(organisations, encoding="utf-8")
    (folder / "settings.toml").write_text(settings, encoding="utf-8")
    (folder / "rubric.toml").write_text(
        rubric if rubric is not None else (PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8"),
        encoding="utf-8")
    return folder

"""Shared fixtures: the demo world served on 127.0.0.1, a config pointing at it, a temp database,
and the demo world harvested, scored and reported once per test session."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from harvester.app.refresh import RefreshResult, refresh
from harvester.config.settings import Settings, load_settings
from harvester.demo import CONFIG, WORLD, render_config
from harvester.demo.server import World, serve_world

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"


def shared_or_skip(*parts: str) -> Path:
    """A path under ../shared/, or a visible skip when it is not beside the project."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/ sits beside the project only in development and CI)")
    return path


@pytest.fixture(scope="session")
def world():
    with serve_world(WORLD) as running:
        yield running


@pytest.fixture
def demo_config(tmp_path, world) -> Path:
    return render_config(CONFIG, tmp_path / "config", world, PROJECT / "config" / "rubric.toml")


@pytest.fixture
def demo_settings(tmp_path, demo_config) -> Settings:
    return load_settings(demo_config, db=tmp_path / "ccqm.duckdb", out=tmp_path / "dossiers", env={})


@dataclass
class Harvested:
    """The demo world after one whole refresh: read it, never write it (use `harvested_copy`)."""

    settings: Settings
    result: RefreshResult
    world: World


@pytest.fixture(scope="session")
def harvested(world, tmp_path_factory) -> Harvested:
    folder = tmp_path_factory.mktemp("harvested")
    config = render_config(CONFIG, folder / "config", world, PROJECT / "config" / "rubric.toml")
    settings = load_settings(config, db=folder / "ccqm.duckdb", out=folder / "dossiers", env={})
    return Harvested(settings, refresh(settings, settings.organisations), world)


@pytest.fixture
def harvested_copy(harvested, tmp_path) -> Settings:
    """Settings over a private copy of the harvested demo database, for tests that write."""
    db = tmp_path / "ccqm.duckdb"
    shutil.copyfile(harvested.settings.db_path, db)
    shutil.copytree(harvested.settings.config_dir, tmp_path / "config")
    return dataclasses.replace(harvested.settings, db_path=db, dossier_dir=tmp_path / "dossiers",
                               config_dir=tmp_path / "config")


def write_classifier(folder: Path, edit: Callable[[dict], object]) -> None:
    """A config folder's own `classifier.json.gz`: the packaged artefact with `edit` applied to it."""
    import gzip
    import json

    from harvester.config.classifier import packaged_classifier_path

    artefact = json.loads(gzip.decompress(packaged_classifier_path().read_bytes()))
    edit(artefact)
    (folder / "classifier.json.gz").write_bytes(gzip.compress(json.dumps(artefact).encode()))


def write_config(folder: Path, *, organisations: str, settings: str = "", rubric: str | None = None) -> Path:
    """A config folder with the given files; the real rubric unless one is given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "organisations.toml").write_text(organisations, encoding="utf-8")
    (folder / "settings.toml").write_text(settings, encoding="utf-8")
    (folder / "rubric.toml").write_text(
        rubric if rubric is not None else (PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8"),
        encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def model():
    """The shipped classifier, as the application loads it."""
    from harvester.config.classifier import load_classifier, packaged_classifier_path

    return load_classifier(packaged_classifier_path())


def database_at_schema(path: Path, version: int):
    """A DuckDB file built by the first `version` migrations only, as an older ccqm left it; the
    connection is returned open, for the test to add rows of that time."""
    import duckdb

    from harvester.store.schema import MIGRATIONS

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    for number, (name, sql) in enumerate(MIGRATIONS[:version], start=1):
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [number, name])
    return con

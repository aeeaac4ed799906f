"""A mistake in any config file stops the command with exit code 2 and one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harvester.errors import ConfigError
from harvester.config.settings import load_settings
from tests.conftest import PROJECT, write_config

GOOD_ORG = """
[[organisation]]
id = "greenfield-primary"
name = "Greenfield Primary School"
kind = "school"
registered = 2026-02-09
step = 4
website = "https://www.greenfield.example.sch.uk/"
"""


def run_ccqm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harvester", *args], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.mark.parametrize("organisations, settings, names", [
    (GOOD_ORG.replace("step = 4", "step = 9"), "", ["organisations.toml", "greenfield-primary", "step"]),
    (GOOD_ORG.replace('kind = "school"', 'kind = "shop"'), "", ["organisations.toml", "kind"]),
    (GOOD_ORG.replace("website = ", "websight = "), "", ["organisations.toml", "websight"]),
    (GOOD_ORG.replace("https://www.greenfield", "file:///www.greenfield"), "", ["organisations.toml", "website"]),
    (GOOD_ORG + GOOD_ORG, "", ["organisations.toml", "duplicate"]),
    (GOOD_ORG.replace("registered = 2026-02-09", "registered = \"last spring\""), "", ["registered"]),
    (GOOD_ORG + "[organisation.social]\nmyspace = ['x']\n", "", ["social.myspace"]),
    (GOOD_ORG, "[harvest]\ndelay_secnds = 2\n", ["settings.toml", "harvest.delay_secnds"]),
    (GOOD_ORG, "[http]\nretries = 'lots'\n", ["settings.toml", "http.retries"]),
    (GOOD_ORG, "[http]\nallow_networks = ['not-a-network']\n", ["settings.toml", "http.allow_networks"]),
    ("[[organisation]\nid = 'x'\n", "", ["organisations.toml", "not valid TOML"]),
])
def test_crawl_with_a_config_mistake_exits_2_with_one_line(tmp_path, organisations, settings, names):
    config = write_config(tmp_path / "config", organisations=organisations, settings=settings)
    result = run_ccqm("--config", str(config), "--db", str(tmp_path / "db.duckdb"), "crawl")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0]
    assert not (tmp_path / "db.duckdb").exists()  # nothing was started


def test_a_rubric_mistake_names_the_field(tmp_path):
    rubric = (PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8")
    broken = rubric.replace("weight = 0.45", "weight = 4.5", 1)
    config = write_config(tmp_path / "config", organisations=GOOD_ORG, rubric=broken)
    result = run_ccqm("--config", str(config), "score")
    assert result.returncode == 2
    assert "rubric.toml" in result.stderr and "criteria.self_reflection.signals[0].weight" in result.stderr

    bad_regex = rubric.replace(r"'\bwe asked\b'", r"'\bwe asked(\b'", 1)
    write_config(tmp_path / "config", organisations=GOOD_ORG, rubric=bad_regex)
    result = run_ccqm("--config", str(config), "score")
    assert result.returncode == 2
    assert "criteria.quiz_outcomes.signals[0].patterns[1]" in result.stderr


def test_environment_overrides_the_file_and_is_checked(tmp_path):
    config = write_config(tmp_path / "config", organisations=GOOD_ORG, settings="[harvest]\ndelay_seconds = 1.0\n")
    settings = load_settings(config, env={"CCQM_HARVEST_DELAY_SECONDS": "2.5"})
    assert settings.harvest.delay_seconds == 2.5
    with pytest.raises(ConfigError, match="CCQM_HARVEST_MAX_DEPTH"):
        load_settings(config, env={"CCQM_HARVEST_MAX_DEPTH": "deep"})


def test_missing_config_folder_is_exit_2(tmp_path):
    result = run_ccqm("--config", str(tmp_path / "nowhere"), "orgs")
    assert result.returncode == 2
    assert "nowhere" in result.stderr and "config folder not found" in result.stderr


def test_the_shipped_config_loads(tmp_path):
    settings = load_settings(PROJECT / "config", db=tmp_path / "db.duckdb", env={})
    assert settings.organisations and settings.rubric.version
    assert settings.http.allow_networks == ()  # production must never admit private addresses

"""A mistake in any config file stops the command with exit code 2 and one line naming it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harvester.errors import ConfigError
from harvester.config.settings import HarvestSettings, load_settings
from tests.conftest import PROJECT, write_classifier, write_config

GOOD_ORG = """
[[organisation]]
id = "greenfield-primary"
name = "Greenfield Primary School"
kind = "school"
registered = 2026-02-09
step = 4
website = "https://www.greenfield.example.sch.uk/"
"""


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_ccqm(*args: str, env: dict | None = None) -> Ran:
    """The real `ccqm` entry point, in process (click's runner): what a user types, minus the
    interpreter's start-up. `env` replaces the CCQM_ variables of the environment."""
    import os

    from click.testing import CliRunner

    from harvester.cli import main

    variables = {k: None for k in os.environ if k.startswith("CCQM_")}
    variables.update({k: v for k, v in (env or {}).items() if k.startswith("CCQM_")})
    result = CliRunner(env=variables).invoke(main, list(args), catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


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
    db = str(tmp_path / "db.duckdb")
    broken = rubric.replace("bronze = 0.25", "bronze = 4.5", 1)
    config = write_config(tmp_path / "config", organisations=GOOD_ORG, rubric=broken)
    result = run_ccqm("--config", str(config), "--db", db, "score")
    assert result.returncode == 2
    assert "rubric.toml" in result.stderr and "levels.bronze" in result.stderr

    bad_regex = rubric.replace(r"'\bpledge'", r"'\bpledge('", 1)
    write_config(tmp_path / "config", organisations=GOOD_ORG, rubric=bad_regex)
    result = run_ccqm("--config", str(config), "--db", db, "score")
    assert result.returncode == 2
    assert "steps.1.patterns[0]" in result.stderr

    unknown = rubric.replace('criteria = ["goals_set"]', 'criteria = ["kindness"]', 1)
    write_config(tmp_path / "config", organisations=GOOD_ORG, rubric=unknown)
    result = run_ccqm("--config", str(config), "--db", db, "score")
    assert result.returncode == 2 and "steps.5.criteria" in result.stderr and "kindness" in result.stderr


@pytest.mark.parametrize("damage, field", [
    (lambda a: a.update(threshold=1.5), "threshold"),
    (lambda a: a["criteria"]["goals_set"]["weights"].pop(), "criteria.goals_set"),
    (lambda a: a.update(v=9), "v"),
    (lambda a: a.update(format="pickle"), "format"),
    (lambda a: a["cv"]["bands"][1].update(evidence=52.5), "cv.bands[1]"),
    (lambda a: a["topic"].update(gate=0), "topic.gate"),
    (lambda a: a["topic"]["weights"].pop(), "topic"),
])
def test_a_classifier_with_a_mistake_exits_2_naming_the_field(tmp_path, damage, field):
    config = write_config(tmp_path / "config", organisations=GOOD_ORG)
    write_classifier(config, damage)
    result = run_ccqm("--config", str(config), "--db", str(tmp_path / "db.duckdb"), "score")
    assert result.returncode == 2, result.stderr
    assert "classifier.json.gz" in result.stderr and f": {field}:" in result.stderr


def test_the_packaged_classifier_is_refused_if_it_is_not_the_pinned_one(tmp_path, monkeypatch):
    from harvester.config import classifier

    fake = tmp_path / "classifier.json.gz"
    fake.write_bytes(classifier.packaged_classifier_path().read_bytes() + b"tampered")
    monkeypatch.setattr(classifier, "packaged_classifier_path", lambda: fake)
    classifier._read.cache_clear()
    with pytest.raises(ConfigError, match="pinned"):
        classifier.load_classifier(fake)
    classifier._read.cache_clear()


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


# -- the settings ladder: defaults < file < environment < flags, one validation at every level ------

def ccqm_env(**variables: str) -> dict:
    """A minimal environment for a subprocess, with these CCQM_ variables."""
    import os

    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **variables}


@pytest.mark.parametrize("variable, value, words", [
    ("CCQM_HARVEST_DELAY_SECNDS", "2", ["CCQM_HARVEST_DELAY_SECNDS", "unknown variable", "CCQM_HARVEST_DELAY_SECONDS"]),
    ("CCQM_PATHS_DB", "x.duckdb", ["CCQM_PATHS_DB", "unknown variable", "CCQM_DB"]),
    ("CCQM_HTTP_MAX_REDIRECTS", "-1", ["CCQM_HTTP_MAX_REDIRECTS", "http.max_redirects", "at least 0"]),
    ("CCQM_HARVEST_MAX_PAGES_PER_SITE", "-5", ["CCQM_HARVEST_MAX_PAGES_PER_SITE", "at least 1"]),
    ("CCQM_HTTP_DEADLINE_SECONDS", "nan", ["CCQM_HTTP_DEADLINE_SECONDS", "finite"]),
    ("CCQM_HTTP_RETRIES", "99", ["CCQM_HTTP_RETRIES", "at most 10"]),
])
def test_a_bad_environment_variable_exits_2_naming_it(tmp_path, variable, value, words):
    config = write_config(tmp_path / "config", organisations=GOOD_ORG)
    result = run_ccqm("--config", str(config), "--db", str(tmp_path / "db.duckdb"), "orgs",
                      env=ccqm_env(**{variable: value}))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("settings_toml, words", [
    ("[http]\nmax_redirects = -1\n", ["settings.toml", "http.max_redirects"]),
    ("[http]\ndeadline_seconds = nan\n", ["settings.toml", "finite"]),
    ("[harvest]\nconcurrency = 0\n", ["settings.toml", "harvest.concurrency"]),
])
def test_the_file_refuses_what_the_environment_refuses(tmp_path, settings_toml, words):
    config = write_config(tmp_path / "config", organisations=GOOD_ORG, settings=settings_toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("website", ["http://10.0.0.1/", "http://169.254.169.254/latest/", "http://localhost:8080/",
                                     "http://[::ffff:10.0.0.1]/", "http://2130706433/"])
def test_a_website_on_a_non_public_address_is_refused_when_the_config_loads(tmp_path, website):
    config = write_config(tmp_path / "config", organisations=GOOD_ORG.replace("https://www.greenfield.example.sch.uk/", website))
    result = run_ccqm("--config", str(config), "--db", str(tmp_path / "db.duckdb"), "crawl", env=ccqm_env())
    assert result.returncode == 2
    assert "organisations.toml" in result.stderr and "greenfield-primary" in result.stderr and "not public" in result.stderr
    allowed = write_config(tmp_path / "allowed", organisations=GOOD_ORG.replace(
        "https://www.greenfield.example.sch.uk/", "http://127.0.0.1:9/"), settings="[http]\nallow_networks = ['127.0.0.1/32']\n")
    assert load_settings(allowed, env={}).organisations[0].website == "http://127.0.0.1:9/"


def test_priority_is_default_file_environment_flag_and_origins_say_so(tmp_path):
    config = write_config(tmp_path / "config", organisations=GOOD_ORG,
                          settings="[harvest]\ndelay_seconds = 1.5\nmax_depth = 2\n[paths]\ndb = 'from-file.duckdb'\n")
    settings = load_settings(config, env={"CCQM_HARVEST_MAX_DEPTH": "4", "CCQM_DB": "from-env.duckdb",
                                          "CCQM_HTTP_ALLOW_NETWORKS": "127.0.0.1/32, ::1/128"})
    assert settings.harvest.delay_seconds == 1.5 and settings.origins["harvest.delay_seconds"].startswith("file ")
    assert settings.harvest.max_depth == 4 and settings.origins["harvest.max_depth"] == "environment CCQM_HARVEST_MAX_DEPTH"
    assert settings.http.allow_networks == ("127.0.0.1/32", "::1/128")  # a list from the environment
    assert str(settings.db_path) == "from-env.duckdb" and settings.origins["paths.db"] == "environment CCQM_DB"
    assert settings.harvest.concurrency == HarvestSettings().concurrency and "harvest.concurrency" not in settings.origins
    flagged = load_settings(config, db=tmp_path / "flag.duckdb", env={"CCQM_DB": "from-env.duckdb"})
    assert flagged.db_path == tmp_path / "flag.duckdb" and flagged.origins["paths.db"] == "flag --db"


def test_the_config_folder_comes_from_the_flag_else_ccqm_config(tmp_path, monkeypatch):
    config = write_config(tmp_path / "config", organisations=GOOD_ORG)
    monkeypatch.chdir(tmp_path / "config")  # no ./config here: only the variable can find it
    settings = load_settings(env={"CCQM_CONFIG": str(config)})
    assert settings.config_dir == config and settings.origins["config"] == "environment CCQM_CONFIG"


def test_a_database_that_is_not_duckdb_exits_2(tmp_path):
    import sqlite3

    config = write_config(tmp_path / "config", organisations=GOOD_ORG)
    lite = tmp_path / "lite.db"
    sqlite3.connect(lite).execute("CREATE TABLE t (x)").connection.commit()
    for db, words in ((lite, "SQLite"), (tmp_path, "folder")):
        result = run_ccqm("--config", str(config), "--db", str(db), "score", env=ccqm_env())
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_classifier_trained_before_the_bands_of_score_still_loads_and_claims_none(tmp_path):
    """A config folder's own artefact from before `cv.bands` existed keeps working: its scores are
    used as they are, with no figure of how often such a score was right."""
    config = write_config(tmp_path / "config", organisations=GOOD_ORG)
    write_classifier(config, lambda artefact: artefact["cv"].pop("bands"))
    older = load_settings(config, db=tmp_path / "db.duckdb", env={}).model
    shipped = load_settings(None, registry=False).model
    assert older.evidence_share(0.95) is None and older.evidence_share(0.55) is None
    assert shipped.evidence_share(0.95) > shipped.evidence_share(0.55) and shipped.evidence_share(0.3) is None

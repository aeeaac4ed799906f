"""The command line as a validator uses it: crawl with a failing source, classify, override, rescore, orgs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import duckdb

import pytest

from tests.conftest import DEMO, PROJECT
from tests.test_config import run_ccqm
from harvester.demo import render_config


@pytest.fixture
def config(tmp_path, world):
    return render_config(DEMO / "config", tmp_path / "config", world, PROJECT / "config" / "rubric.toml")


def cli(config, tmp_path, *args):
    return run_ccqm("--config", str(config), "--db", str(tmp_path / "ccqm.duckdb"), *args)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failing_source_is_named_exit_1_and_the_others_are_kept(config, tmp_path):
    registry = config / "organisations.toml"
    registry.write_text(registry.read_text(encoding="utf-8") + f"""
[[organisation]]
id = "offline-mosque"
name = "Offline Mosque"
kind = "faith"
registered = 2026-06-01
step = 2
website = "http://127.0.0.1:{closed_port()}/"
""", encoding="utf-8")
    result = cli(config, tmp_path, "crawl")
    assert result.returncode == 1, result.stderr
    assert "failed: offline-mosque/website/" in result.stdout
    assert "offline-mosque/website/" in result.stderr.splitlines()[-1]
    orgs = json.loads(cli(config, tmp_path, "orgs", "--json").stdout)
    assert {o["id"] for o in orgs if o["last_harvest"]} == {"greenfield-primary", "castlegate-logistics",
                                                           "riverside-larder"}


def test_classify_keeps_ids_and_order(config, tmp_path):
    lines = [{"id": "b", "text": "We asked 120 parents about belonging; 64% said they feel part of the school community."},
             {"id": 7, "text": "School dinners this week: pasta bake."},
             {"id": "a", "text": "By March 2027 we will translate every letter home into five languages."}]
    result = subprocess.run([sys.executable, "-m", "harvester", "--config", str(config), "classify"],
                            input="\n".join(json.dumps(l) for l in lines) + "\n", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["b", 7, "a"]
    assert "quiz_outcomes" in out[0]["labels"] and out[1]["labels"] == [] and "goals_set" in out[2]["labels"]
    assert set(out[0]["criteria"]) == {"self_reflection", "quiz_outcomes", "goals_set", "actions_taken", "progress_shared"}
    assert out[0]["criteria"]["quiz_outcomes"]["signals"][0]["name"]

    bad = subprocess.run([sys.executable, "-m", "harvester", "--config", str(config), "classify"],
                         input='{"id": 1, "text": "ok"}\nnot json\n', capture_output=True, text=True)
    assert bad.returncode == 2 and "line 2" in bad.stderr


def test_override_survives_rescore_and_rescore_prints_what_changed(config, tmp_path):
    assert cli(config, tmp_path, "crawl", "castlegate-logistics").returncode == 0
    first = cli(config, tmp_path, "rescore", "castlegate-logistics", "--out", str(tmp_path / "dossiers"))
    assert first.returncode == 0 and "First scoring" in first.stdout

    con = duckdb.connect(str(tmp_path / "ccqm.duckdb"))
    result = json.loads(con.execute("SELECT result FROM score_runs ORDER BY scored_at DESC LIMIT 1").fetchone()[0])
    con.close()
    goals = next(c for c in result["criteria"] if c["criterion"] == "goals_set")
    top = goals["cited"][0]["item_id"]

    override = cli(config, tmp_path, "override", "castlegate-logistics", top, "--exclude", "goals_set",
                   "--note", "Copied from a supplier's plan", "--by", "A. Validator")
    assert override.returncode == 0, override.stderr
    second = cli(config, tmp_path, "rescore", "castlegate-logistics", "--out", str(tmp_path / "dossiers"))
    assert second.returncode == 0
    assert f"Goals set: no longer cited {top}" in second.stdout
    third = cli(config, tmp_path, "rescore", "castlegate-logistics", "--refresh", "--out", str(tmp_path / "dossiers"))
    assert third.returncode == 0 and "nothing changed" in third.stdout  # the override survived a fresh harvest
    dossier = (tmp_path / "dossiers" / "castlegate-logistics.html").read_text(encoding="utf-8")
    assert "Copied from a supplier&#39;s plan" in dossier and "A. Validator" in dossier

    wrong = cli(config, tmp_path, "override", "castlegate-logistics", top, "--include", "kindness", "--by", "x")
    assert wrong.returncode == 2 and "unknown criterion" in wrong.stderr

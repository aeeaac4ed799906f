"""The command line as a validator uses it: crawl with a failing source, classify, override,
rescore, dossier and orgs (which only read), config."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys

import duckdb

from tests.conftest import PROJECT
from tests.test_config import run_ccqm


def cli(config, db, *args, env=None):
    return run_ccqm("--config", str(config), "--db", str(db), *args, env=env)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failing_source_is_named_exit_1_and_the_others_are_kept(harvested_copy):
    demo_config, db = harvested_copy.config_dir, harvested_copy.db_path
    registry = demo_config / "organisations.toml"
    registry.write_text(registry.read_text(encoding="utf-8") + f"""
[[organisation]]
id = "offline-mosque"
name = "Offline Mosque"
kind = "faith"
registered = 2026-06-01
step = 2
website = "http://127.0.0.1:{closed_port()}/"
""", encoding="utf-8")
    result = cli(demo_config, db, "crawl", "offline-mosque", "riverside-larder")
    assert result.returncode == 1, result.stderr
    assert "failed: offline-mosque/website/" in result.stdout
    assert "offline-mosque/website/" in result.stderr.splitlines()[-1]
    orgs = json.loads(cli(demo_config, db, "orgs", "--json").stdout)
    assert {o["id"] for o in orgs if o["last_harvest"]} == {"greenfield-primary", "castlegate-logistics",
                                                           "riverside-larder"}


def classify(config, text: str | bytes):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    return subprocess.run([sys.executable, "-m", "harvester", "--config", str(config), "classify"],
                          input=data, capture_output=True)


def test_classify_keeps_ids_and_order(demo_config):
    lines = [{"id": "b", "text": "We asked 120 parents about belonging; 64% said they feel part of the school community."},
             {"id": 7, "text": "School dinners this week: pasta bake."},
             {"id": "a", "text": "By March 2027 we will translate every letter home into five languages."}]
    result = classify(demo_config, "\n".join(json.dumps(l) for l in lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [o["id"] for o in out] == ["b", 7, "a"]
    assert "quiz_outcomes" in out[0]["labels"] and out[1]["labels"] == [] and "goals_set" in out[2]["labels"]
    assert set(out[0]["criteria"]) == {"self_reflection", "quiz_outcomes", "goals_set", "actions_taken", "progress_shared"}
    for line, o in zip(lines, out):
        assert o["model"].startswith("2026.")  # the rubric and classifier versions that decided
        for name, criterion in o["criteria"].items():
            signal = criterion["signals"][0]  # the explanation: the passage, its sentences that weighed most
            passage = line["text"].index(signal["text"])
            for start, end in signal["spans"]:
                assert passage <= start < end <= len(line["text"])
            assert isinstance(signal["terms"], list)
    assert out[2]["criteria"]["goals_set"]["signals"][0]["terms"]
    for o in out:  # how far each score can be trusted: a share for a label, none below the threshold
        for name, criterion in o["criteria"].items():
            share = criterion["evidence_share"]
            assert (share is not None) == (criterion["score"] >= 0.5), (name, criterion["score"], share)
            assert share is None or 0 < share < 1


def test_classify_names_each_bad_line_and_still_classifies_the_others(demo_config):
    deep = b"[" * 100_000 + b"]" * 100_000
    data = b'{"id": 1, "text": "ok"}\nnot json\n\xff\xfe bad bytes\n' + deep + b'\n{"id": 5, "text": "fine"}\n'
    result = classify(demo_config, data)
    assert result.returncode == 1
    assert [json.loads(line)["id"] for line in result.stdout.decode().splitlines()] == [1, 5]
    errors = result.stderr.decode().splitlines()
    assert len(errors) == 3 and "Traceback" not in result.stderr.decode()
    assert "input error: <stdin>: line 2: not JSON" in errors[0]
    assert "line 3: not UTF-8" in errors[1]
    assert "line 4" in errors[2]


def test_classify_needs_no_registry(tmp_path):
    (tmp_path / "organisations.toml").write_text("this is [not toml", encoding="utf-8")
    result = classify(tmp_path, '{"id": 1, "text": "By March 2027 we will translate every letter home into five languages."}\n')
    assert result.returncode == 0, result.stderr
    assert "goals_set" in json.loads(result.stdout)["labels"]


def test_classify_runs_anywhere_with_the_packaged_rubric_and_classifier(tmp_path):
    """A validator who pip-installed ccqm can classify text from any folder; a folder named and
    missing is still a mistake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCQM_")}
    line = b'{"id": 1, "text": "By March 2027 we will translate every letter home into five languages."}\n'
    holder = b'{"id": 2, "text": "We are now a CCQM Bronze school."}\n'
    result = subprocess.run([sys.executable, "-m", "harvester", "classify"], input=line + holder, capture_output=True,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(out) for out in result.stdout.splitlines())
    assert "goals_set" in first["labels"] and first["claims"] == []
    assert second["claims"] == ["Bronze"] and {1, 2, 3} <= set(second["steps"])
    named = subprocess.run([sys.executable, "-m", "harvester", "--config", "nowhere", "classify"], input=line,
                           capture_output=True, cwd=tmp_path, env=env)
    assert named.returncode == 2 and b"config folder not found" in named.stderr


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dossier_and_orgs_only_read_the_database(harvested_copy, tmp_path):
    before = digest(harvested_copy.db_path)
    result = cli(harvested_copy.config_dir, harvested_copy.db_path, "dossier", "--out", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "greenfield-primary.html").exists()
    assert cli(harvested_copy.config_dir, harvested_copy.db_path, "orgs").returncode == 0
    assert digest(harvested_copy.db_path) == before

    missing = tmp_path / "none" / "ccqm.duckdb"
    listing = cli(harvested_copy.config_dir, missing, "orgs", "--json")
    assert listing.returncode == 0 and not missing.exists() and not missing.parent.exists()
    assert all(o["last_harvest"] is None for o in json.loads(listing.stdout))


def test_the_dossier_lists_what_an_override_changed(harvested_copy, tmp_path):
    config, db, out = harvested_copy.config_dir, harvested_copy.db_path, tmp_path / "dossiers"
    con = duckdb.connect(str(db), read_only=True)
    result = json.loads(con.execute("SELECT result FROM score_runs WHERE org_id = 'castlegate-logistics' "
                                    "ORDER BY scored_at DESC LIMIT 1").fetchone()[0])["data"]
    con.close()
    goals = next(c for c in result["criteria"] if c["criterion"] == "goals_set")
    top = goals["cited"][0]["item_id"]
    con = duckdb.connect(str(db), read_only=True)
    url = con.execute("SELECT url FROM items WHERE id = ?", [top]).fetchone()[0]
    con.close()

    override = cli(config, db, "override", "castlegate-logistics", url, "--exclude", "goals_set",
                   "--note", "Copied from a supplier's plan", "--by", "A. Validator")
    assert override.returncode == 0, override.stderr
    second = cli(config, db, "rescore", "castlegate-logistics", "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert f"Goals set: no longer cited {top}" in second.stdout
    dossier = (out / "castlegate-logistics.html").read_text(encoding="utf-8")
    assert f"Goals set: no longer cited {top}" in dossier
    assert "Copied from a supplier&#39;s plan" in dossier and "A. Validator" in dossier
    # a plain `ccqm dossier` afterwards still shows the change the last scoring made
    assert cli(config, db, "dossier", "--out", str(out)).returncode == 0
    assert f"no longer cited {top}" in (out / "castlegate-logistics.html").read_text(encoding="utf-8")

    third = cli(config, db, "rescore", "castlegate-logistics", "--refresh", "--out", str(out))
    assert third.returncode == 0 and "nothing changed" in third.stdout  # the override survived a fresh harvest

    wrong = cli(config, db, "override", "castlegate-logistics", top, "--include", "kindness", "--by", "x")
    assert wrong.returncode == 2 and "unknown criterion" in wrong.stderr


def test_config_prints_each_value_and_where_it_came_from(demo_config, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CCQM_HARVEST_DELAY_SECONDS": "2.5"}
    result = cli(demo_config, tmp_path / "x.duckdb", "config", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {r["setting"]: r for r in json.loads(result.stdout)}
    assert rows["harvest.delay_seconds"] == {"setting": "harvest.delay_seconds", "value": 2.5,
                                             "from": "environment CCQM_HARVEST_DELAY_SECONDS"}
    assert rows["paths.db"]["from"] == "flag --db"
    assert rows["http.allow_networks"]["from"].startswith("file ")
    assert rows["http.max_redirects"]["from"] == "default"
    assert rows["config"]["from"] == "flag --config"


def test_score_prints_each_organisation_and_classifies_only_what_is_new(harvested_copy):
    config, db = harvested_copy.config_dir, harvested_copy.db_path
    result = cli(config, db, "score")
    assert result.returncode == 0, result.stderr
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    assert set(lines) == {o.id for o in harvested_copy.organisations}
    assert "0 classified" in lines["greenfield-primary"]  # cached from the first scoring
    assert "Gold" in lines["greenfield-primary"] or "Silver" in lines["greenfield-primary"]
    assert "no award yet" in lines["riverside-larder"]


def test_score_says_how_far_classifying_has_got(harvested_copy):
    config, db = harvested_copy.config_dir, harvested_copy.db_path
    rubric = config / "rubric.toml"
    text = (PROJECT / "config" / "rubric.toml").read_text(encoding="utf-8")
    rubric.write_text(re.sub(r'(?m)^version = "[^"]*"', 'version = "edited-by-a-validator"', text, count=1),
                      encoding="utf-8")  # a new rubric: every stored text is classified afresh
    result = cli(config, db, "score")
    assert result.returncode == 0, result.stderr
    said = [tuple(map(int, m.groups())) for m in re.finditer(r"classified (\d+) of (\d+) texts", result.stderr)]
    assert 2 <= len(said) <= 11  # a line at each tenth, not one a text
    total = said[-1][1]
    assert said[-1] == (total, total) and [done for done, _ in said] == sorted({done for done, _ in said})
    assert total <= sum(int(m) for m in re.findall(r"(\d+) classified", result.stdout))  # a repeated text once


def test_schedule_runs_in_the_foreground_until_interrupted(demo_config, tmp_path):
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "harvester", "--config", str(demo_config), "--db",
                                str(tmp_path / "ccqm.duckdb"), "schedule"], stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()
        assert "nightly harvest on '0 2 * * *' (Europe/London)" in first
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
    assert "stopped" in rest
    assert not (tmp_path / "ccqm.duckdb").exists()  # nothing ran before 02:00

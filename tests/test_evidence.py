"""`ccqm evidence add`: a page no collector reaches, fetched through the same safe client and kept
as an organisation's evidence with its snapshot and who added it."""

from __future__ import annotations

from harvester.store.db import open_store
from tests.test_config import run_ccqm


def test_a_validator_adds_a_page_as_evidence_with_its_snapshot(harvested_copy, harvested):
    args = ["--config", str(harvested_copy.config_dir), "--db", str(harvested_copy.db_path)]
    url = harvested.world.sites["greenfield"] + "/news/"  # stands in for a local news article
    result = run_ccqm(*args, "evidence", "add", "riverside-larder", url, "--note", "Northbridge Gazette feature",
                      "--by", "a.validator")
    assert result.returncode == 0, result.stderr
    assert "evidence for riverside-larder" in result.stdout
    with open_store(harvested_copy.db_path, read_only=True) as store:
        rows = store.con.execute(
            "SELECT a.how, count(s.hash) FROM items i JOIN attributions a ON a.item_id = i.id AND a.org_id = ? "
            "LEFT JOIN snapshots s ON s.item_id = i.id WHERE i.url = ? GROUP BY a.how",
            ["riverside-larder", url]).fetchall()
    assert rows == [("added by a.validator: Northbridge Gazette feature", 1)]
    # a later registry sync (every harvest) keeps it
    again = run_ccqm(*args, "evidence", "add", "riverside-larder", url)
    assert again.returncode == 0 and "unchanged evidence" in again.stdout


def test_evidence_from_a_private_address_is_refused_in_one_line(harvested_copy):
    args = ["--config", str(harvested_copy.config_dir), "--db", str(harvested_copy.db_path)]
    result = run_ccqm(*args, "evidence", "add", "riverside-larder", "http://169.254.169.254/latest/meta-data/")
    assert result.returncode == 1
    assert "169.254.169.254" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_evidence_for_an_unknown_organisation_is_a_usage_error(harvested_copy):
    args = ["--config", str(harvested_copy.config_dir), "--db", str(harvested_copy.db_path)]
    result = run_ccqm(*args, "evidence", "add", "nobody", "https://example.org/")
    assert result.returncode == 2 and "nobody" in result.stderr

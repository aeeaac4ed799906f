"""The nightly schedule: 02:00 London time across clock changes, one run at a time, real grace."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from harvester.errors import ConfigError
from harvester.scheduler import build_scheduler
from harvester.config.settings import ScheduleSettings, with_overrides

LONDON = ZoneInfo("Europe/London")


def test_nightly_job_fires_at_two_in_london_across_daylight_saving(demo_settings):
    scheduler = build_scheduler(demo_settings, lambda: None, blocking=False)
    job = scheduler.get_jobs()[0]
    assert job.max_instances == 1 and job.coalesce is True
    assert job.misfire_grace_time == ScheduleSettings().misfire_grace_seconds > 3600
    for now, expected_utc in [
        (dt.datetime(2026, 3, 28, 12, 0, tzinfo=LONDON), dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.timezone.utc)),  # BST starts
        (dt.datetime(2026, 10, 24, 12, 0, tzinfo=LONDON), dt.datetime(2026, 10, 25, 2, 0, tzinfo=dt.timezone.utc)),  # GMT again
    ]:
        fire = job.trigger.get_next_fire_time(None, now)
        assert fire.astimezone(LONDON).hour == 2
        assert fire == expected_utc


def test_a_bad_cron_is_a_config_error(demo_settings):
    broken = with_overrides(demo_settings, schedule={"cron": "at two"})
    with pytest.raises(ConfigError, match="schedule.cron"):
        build_scheduler(broken, lambda: None, blocking=False)


def test_each_night_reads_the_configuration_afresh_and_a_broken_one_skips_only_that_night(tmp_path, demo_config):
    from harvester.config.settings import load_settings
    from harvester.scheduler import nightly_job

    registry = demo_config / "organisations.toml"
    whole = registry.read_text(encoding="utf-8")
    heard: list[str] = []
    job = nightly_job(lambda: load_settings(demo_config, db=tmp_path / "ccqm.duckdb", out=tmp_path / "dossiers",
                                            env={}), echo=heard.append)

    registry.write_text(whole + "\n[[organisation]]\nid = \n", encoding="utf-8")  # a half-finished edit
    job()
    assert len(heard) == 1 and heard[0].startswith("ccqm schedule: tonight's run skipped:")
    assert "organisations.toml" in heard[0] and not (tmp_path / "dossiers").exists()

    first = whole.index("[[organisation]]")
    second = whole.index("[[organisation]]", first + 1)
    registry.write_text(whole[:second], encoding="utf-8")  # fixed, and only the first organisation left
    job()
    index = (tmp_path / "dossiers" / "index.html").read_text(encoding="utf-8")
    assert "greenfield-primary.html" in index and "castlegate-logistics.html" not in index

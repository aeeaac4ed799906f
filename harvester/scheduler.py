"""`ccqm schedule`: the nightly harvest, score and dossiers, on the cron of `config/settings.toml`.

APScheduler runs one job at a time (`max_instances=1`), coalesces missed runs into one, and
allows a real misfire grace time (its default of one second silently skips a late run). The
cron is read in the configured timezone (Europe/London by default), so 02:00 stays 02:00 across
daylight-saving changes. No job store is used: the schedule lives in the settings.
"""

from __future__ import annotations

from typing import Callable
from zoneinfo import ZoneInfo

from harvester.errors import CcqmError, ConfigError
from harvester.config.settings import Settings


def nightly(settings: Settings, echo: Callable[[str], None] = print) -> None:
    """One nightly run: the same refresh as `ccqm rescore --refresh`, for every organisation."""
    from harvester.app.assess import every_tenth
    from harvester.app.refresh import refresh

    result = refresh(settings, settings.organisations, on_classified=every_tenth(echo))
    echo(f"harvest {result.report.run_id}: {len(result.report.outcomes)} sources, {len(result.failed)} failed")
    echo(f"dossiers: {result.index}")


def build_scheduler(settings: Settings, job: Callable[[], None], *, blocking: bool = True):
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    try:
        tz = ZoneInfo(settings.schedule.timezone)
        trigger = CronTrigger.from_crontab(settings.schedule.cron, timezone=tz)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"invalid schedule ({exc})", file=str(settings.config_dir / "settings.toml"),
                          field="schedule.cron / schedule.timezone") from None
    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=tz)
    scheduler.add_job(job, trigger, id="nightly", max_instances=1, coalesce=True,
                      misfire_grace_time=settings.schedule.misfire_grace_seconds, replace_existing=True)
    return scheduler


def nightly_job(reload: Callable[[], Settings], echo: Callable[[str], None] = print) -> Callable[[], None]:
    """The nightly job: it reads the configuration afresh each night (the registry, the rubric and
    a classifier retrained by `ccqm train --decisions` are picked up without a restart); a broken
    one skips that night with one line naming the file, and the schedule goes on."""
    def job() -> None:
        try:
            settings = reload()
        except CcqmError as exc:
            echo(f"ccqm schedule: tonight's run skipped: {exc}")
            return
        nightly(settings, echo)
    return job


def run_schedule(settings: Settings, echo: Callable[[str], None] = print,
                 reload: Callable[[], Settings] | None = None) -> None:
    scheduler = build_scheduler(settings, nightly_job(reload or (lambda: settings), echo))
    echo(f"ccqm schedule: nightly harvest on '{settings.schedule.cron}' ({settings.schedule.timezone}); Ctrl-C stops")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        echo("ccqm schedule: stopped")

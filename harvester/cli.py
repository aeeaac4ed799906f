"""The `ccqm` command line: each command parses options, calls one library function, prints.

Exit codes: 0 all well; 1 finished but something failed (each failure named); 2 bad usage or
bad configuration (one line naming the file and field).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import click

from harvester.errors import CcqmError, ConfigError
from harvester.settings import Settings, load_settings


class Failed(click.ClickException):
    exit_code = 1


@contextmanager
def _errors():
    """Map our errors to one line and an exit code, here at the edge only."""
    try:
        yield
    except ConfigError as exc:
        click.echo(f"ccqm: config error: {exc}", err=True)
        sys.exit(2)
    except CcqmError as exc:
        click.echo(f"ccqm: {exc}", err=True)
        sys.exit(1)


def _settings(ctx: click.Context, out: str | None = None) -> Settings:
    with _errors():
        return load_settings(ctx.obj["config"], db=ctx.obj["db"], out=out)


def _progress(total: int, label: str = "harvesting"):
    """A progress callback, called from harvest threads: a bar on a terminal, log lines otherwise."""
    lock = threading.Lock()
    if sys.stderr.isatty() and total:
        bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
        bar.render_progress()

        def step(outcome):
            with lock:
                bar.update(1)
                if bar.pos >= total:
                    bar.render_finish()
        return step

    def line(outcome):
        counts = ", ".join(f"{n} {k}" for k, n in sorted(outcome.counts.items())) or "nothing new"
        with lock:
            click.echo(f"{outcome.source.id}: {outcome.status} ({counts})", err=True)
    return line


def _print_harvest(report) -> None:
    totals = report.totals
    click.echo(f"harvest {report.run_id}: {len(report.outcomes)} sources, {totals['new']} new, "
               f"{totals['changed']} changed, {totals['unchanged']} unchanged, {totals['gone']} gone")
    for o in sorted(report.outcomes, key=lambda o: o.source.id):
        if o.status in ("failed", "skipped", "partial"):
            click.echo(f"  {o.status}: {o.source.id}: {o.errors[-1] if o.errors else ''}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config", envvar="CCQM_CONFIG", default="config", show_default=True,
              help="Config folder with organisations.toml, rubric.toml, settings.toml [env CCQM_CONFIG].")
@click.option("--db", "db", envvar="CCQM_DB", default=None,
              help="DuckDB file [env CCQM_DB; default paths.db in settings.toml, data/ccqm.duckdb].")
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail.")
@click.version_option(package_name="ccqm")
@click.pass_context
def main(ctx: click.Context, config: str, db: str | None, verbose: bool) -> None:
    """Harvest, score and report the evidence of organisations working towards the CCQM."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"config": config, "db": db}


@main.command()
@click.option("--out", default="ccqm-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's config, database and dossiers.")
@click.pass_context
def demo(ctx: click.Context, out: str) -> None:
    """Serve the demo world on 127.0.0.1, harvest it, score it, write the dossiers."""
    from harvester.demo import run_demo

    with _errors():
        click.echo(f"ccqm demo: serving the demo world on 127.0.0.1 and harvesting it into {out}/", err=True)
        result = run_demo(Path(out), db=Path(ctx.obj["db"]) if ctx.obj["db"] else None, progress=_progress)
    _print_harvest(result.report)
    for s in result.scores:
        levels = " ".join(f"{c.criterion}={c.level}" for c in s.after.criteria)
        click.echo(f"  {s.org.id}: {s.after.award.level or 'no award yet'} ({levels})")
    click.echo(str(result.index.resolve()))


@main.command()
@click.argument("orgs", nargs=-1)
@click.pass_context
def crawl(ctx: click.Context, orgs: tuple[str, ...]) -> None:
    """Harvest the named organisations (all by default)."""
    from harvester.pipeline import harvest

    settings = _settings(ctx)
    with _errors():
        chosen = settings.select(orgs)
        report = harvest(settings, chosen, on_source=_progress(sum(len(o.sources) for o in chosen), "harvesting"))
    _print_harvest(report)
    if report.failed:
        raise Failed(f"{len(report.failed)} source(s) failed: " + ", ".join(o.source.id for o in report.failed))


@main.command("score")
@click.argument("orgs", nargs=-1)
@click.pass_context
def score_cmd(ctx: click.Context, orgs: tuple[str, ...]) -> None:
    """Classify new items and roll up scores."""
    from harvester.assess import score

    settings = _settings(ctx)
    with _errors():
        for s in score(settings, settings.select(orgs)):
            levels = " ".join(f"{c.criterion}={c.level}" for c in s.after.criteria)
            click.echo(f"{s.org.id}: {s.after.award.level or 'no award yet'} ({levels}); {s.classified} classified")


@main.command()
@click.argument("orgs", nargs=-1)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Folder [default paths.dossiers].")
@click.pass_context
def dossier(ctx: click.Context, orgs: tuple[str, ...], out: str | None) -> None:
    """Write HTML dossiers and the index."""
    from harvester.dossiers import write_dossiers

    settings = _settings(ctx, out)
    with _errors():
        click.echo(str(write_dossiers(settings, settings.select(orgs)).resolve()))


@main.command()
@click.argument("org")
@click.option("--refresh", is_flag=True, help="Harvest the organisation first.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Folder [default paths.dossiers].")
@click.pass_context
def rescore(ctx: click.Context, org: str, refresh: bool, out: str | None) -> None:
    """One organisation: (harvest,) score, dossier; print what changed."""
    from harvester.assess import score
    from harvester.dossiers import write_dossiers
    from harvester.pipeline import harvest

    settings = _settings(ctx, out)
    with _errors():
        chosen = settings.select([org])
        report = harvest(settings, chosen) if refresh else None
        outcome = score(settings, chosen)[0]
        index = write_dossiers(settings, chosen)
    if report:
        _print_harvest(report)
    click.echo(f"{org}: {outcome.after.award.level or 'no award yet'}")
    for line in outcome.changes or ["nothing changed"]:
        click.echo(f"  {line}")
    click.echo(str((index.parent / f"{org}.html").resolve()))
    if report and report.failed:
        raise Failed(f"{len(report.failed)} source(s) failed")


@main.command()
@click.argument("file", default="-", type=click.File("r", encoding="utf-8"))
@click.pass_context
def classify(ctx: click.Context, file) -> None:
    """JSONL in ({"id", "text"} a line), JSONL out with labels and criteria, in input order."""
    from harvester.classify_io import classify_lines

    settings = _settings(ctx)
    with _errors():
        for line in classify_lines(file, settings.rubric, source=getattr(file, "name", "-")):
            click.echo(line)


@main.command()
@click.argument("org")
@click.argument("item")
@click.option("--include", "include", metavar="CRITERION", help="Count the item for this criterion.")
@click.option("--exclude", "exclude", metavar="CRITERION", is_flag=False, flag_value="*",
              help="Do not count the item (for one criterion, or all when none is given).")
@click.option("--note", default="", help="Why.")
@click.option("--by", required=True, help="Who decided (kept in the audit trail).")
@click.pass_context
def override(ctx: click.Context, org: str, item: str, include: str | None, exclude: str | None,
             note: str, by: str) -> None:
    """A validator's include / exclude / note on one ITEM (id or URL), kept forever."""
    from harvester.overrides import add_override

    settings = _settings(ctx)
    with _errors():
        saved = add_override(settings, org, item, include=include, exclude=exclude, note=note, by=by)
    click.echo(f"override {saved.id}: {saved.action} {saved.criterion or 'all criteria'} on {saved.item_id} by {saved.by}"
               " (run `ccqm rescore` to apply)")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def orgs(ctx: click.Context, as_json: bool) -> None:
    """Registered organisations, last harvest, current levels."""
    from harvester.status import org_status

    settings = _settings(ctx)
    with _errors():
        rows = org_status(settings)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for r in rows:
        levels = " ".join(f"{k}={v}" for k, v in r["levels"].items()) or "not scored"
        harvested = r["last_harvest"].strftime("%Y-%m-%d %H:%M UTC") if r["last_harvest"] else "never"
        click.echo(f"{r['id']:<28} {r['kind']:<9} harvested {harvested:<20} {r['award'] or 'no award':<9} {levels}")


@main.command()
@click.pass_context
def schedule(ctx: click.Context) -> None:
    """Run the nightly harvest in the foreground until stopped (Ctrl-C)."""
    from harvester.scheduler import run_schedule

    settings = _settings(ctx)
    with _errors():
        run_schedule(settings, echo=lambda msg: click.echo(msg, err=True))


if __name__ == "__main__":
    main()

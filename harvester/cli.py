"""The `ccqm` command line: each command parses options, calls one library function, prints.

Exit codes: 0 all well; 1 finished but something failed (each failure named); 2 bad usage or
bad configuration (one line naming the file and field). Each error class carries its own code
(harvester.errors); this module only prints it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import click

from harvester.config.settings import Settings, load_settings
from harvester.errors import CcqmError, InterruptedRun
from harvester.items import visible


class Failed(click.ClickException):
    exit_code = 1


def _say(exc: CcqmError) -> None:
    click.echo(visible(f"ccqm: {exc.label + ': ' if exc.label else ''}{exc}"), err=True)


class _SafeFormatter(logging.Formatter):
    """Log lines carry harvested words (a server's reason phrase, a URL): shown, never obeyed."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record), keep_newlines=True)


@contextmanager
def _errors():
    """Our errors as one line and their own exit code, here at the edge only."""
    try:
        yield
    except CcqmError as exc:
        _say(exc)
        sys.exit(exc.exit_code)


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


# Who made a validator's decision, kept with it: the login name unless given.
_by_option = click.option("--by", default=lambda: os.environ.get("USER", "validator"), show_default="$USER",
                          help="Who decided (kept with the decision).")


def _settings(ctx: click.Context, out: str | None = None, *, registry: bool = True,
              folder_optional: bool = False) -> Settings:
    with _errors():
        return load_settings(ctx.obj["config"], db=ctx.obj["db"], out=out, registry=registry,
                             folder_optional=folder_optional)


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
            click.echo(visible(f"{outcome.source.id}: {outcome.status} ({counts})"), err=True)
    return line


def _classify_progress():
    """A progress callback for classifying: a bar on a terminal, a line at each tenth otherwise."""
    from harvester.app.assess import every_tenth

    if not sys.stderr.isatty():
        return every_tenth(lambda line: click.echo(line, err=True))
    bars = []

    def step(done: int, total: int) -> None:
        if not bars:
            bars.append(click.progressbar(length=total, label="classifying", file=sys.stderr, show_pos=True))
        bars[0].update(done - bars[0].pos)
        if done >= total:
            bars[0].render_finish()
    return step


def _print_harvest(report) -> None:
    totals = report.totals
    click.echo(f"harvest {report.run_id}: {len(report.outcomes)} sources, {totals['new']} new, "
               f"{totals['changed']} changed, {totals['unchanged']} unchanged, {totals['gone']} gone")
    for o in sorted(report.outcomes, key=lambda o: o.source.id):
        if o.status in ("failed", "skipped", "partial"):
            click.echo(visible(f"  {o.status}: {o.source.id}: {o.errors[-1] if o.errors else ''}"))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config", default=None,
              help="Config folder with organisations.toml, rubric.toml, settings.toml "
                   "[env CCQM_CONFIG; default ./config].")
@click.option("--db", "db", default=None,
              help="DuckDB file [env CCQM_DB; else paths.db in settings.toml; default data/ccqm.duckdb].")
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail.")
@click.version_option(package_name="ccqm")
@click.pass_context
def main(ctx: click.Context, config: str, db: str | None, verbose: bool) -> None:
    """Harvest, score and report the evidence of organisations working towards the CCQM."""
    handler = logging.StreamHandler()
    handler.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler], force=True)
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
        click.echo(f"  {s.org.id}: {_levels(s.after)}")
    click.echo(str(result.index.resolve()))


def _levels(score) -> str:
    levels = " ".join(f"{c.criterion}={c.level}" for c in score.criteria)
    return f"{score.award.level or 'no award yet'} ({levels})"


@main.command()
@click.argument("orgs", nargs=-1)
@click.pass_context
def crawl(ctx: click.Context, orgs: tuple[str, ...]) -> None:
    """Harvest the named organisations (all by default)."""
    from harvester.app.harvest import harvest

    settings = _settings(ctx)
    with _errors():
        chosen = settings.select(orgs)
        report = harvest(settings, chosen, on_source=_progress(sum(len(o.sources) for o in chosen), "harvesting"),
                         scheme=not orgs)  # all organisations: the scheme's mentions and tags too
    _print_harvest(report)
    if report.interrupted:
        _say(InterruptedRun(f"harvest {report.run_id} was stopped; what was fetched is saved and the next run "
                            "carries on"))
        sys.exit(InterruptedRun.exit_code)
    if report.failed:
        raise Failed(f"{len(report.failed)} source(s) failed: " + ", ".join(o.source.id for o in report.failed))


@main.command("score")
@click.argument("orgs", nargs=-1)
@click.pass_context
def score_cmd(ctx: click.Context, orgs: tuple[str, ...]) -> None:
    """Classify new items and roll up scores."""
    from harvester.app.assess import score

    settings = _settings(ctx)
    with _errors():
        for s in score(settings, settings.select(orgs), on_classified=_classify_progress()):
            click.echo(f"{s.org.id}: {_levels(s.after)}; {s.classified} classified")


@main.command()
@click.argument("orgs", nargs=-1)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Folder [default paths.dossiers].")
@click.pass_context
def dossier(ctx: click.Context, orgs: tuple[str, ...], out: str | None) -> None:
    """Write HTML dossiers and the index."""
    from harvester.app.dossiers import write_dossiers

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
    from harvester.app.refresh import refresh as refresh_round

    settings = _settings(ctx, out)
    with _errors():
        result = refresh_round(settings, settings.select([org]), harvest_first=refresh,
                               on_classified=_classify_progress())
    if result.report:
        _print_harvest(result.report)
    outcome = result.scores[0]
    click.echo(f"{org}: {outcome.after.award.level or 'no award yet'}")
    for line in outcome.changes or ["nothing changed"]:
        click.echo(visible(f"  {line}"))
    click.echo(str((result.index.parent / f"{org}.html").resolve()))
    if result.failed:
        raise Failed(f"{len(result.failed)} source(s) failed")


@main.command()
@click.argument("file", default="-", type=click.File("rb"))
@click.pass_context
def classify(ctx: click.Context, file) -> None:
    """JSONL in ({"id", "text"} a line), JSONL out with labels and criteria, in input order.

    A line that cannot be read is named on stderr and skipped; the exit code is then 1. Without a
    config folder it uses the packaged rubric and classifier."""
    from harvester.app.classify import classify_stream

    settings = _settings(ctx, registry=False, folder_optional=True)
    bad = 0
    with _errors():
        for out in classify_stream(file, settings.rubric, settings.model, source=getattr(file, "name", "-")):
            if isinstance(out, CcqmError):
                bad += 1
                _say(out)
            else:
                click.echo(out)
    if bad:
        sys.exit(1)


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
    from harvester.app.overrides import add_override

    settings = _settings(ctx)
    with _errors():
        saved = add_override(settings, org, item, include=include, exclude=exclude, note=note, by=by)
    from reports.build import counted

    for o in saved:
        scores = dict(o.machine)
        had = (f" (the machine scored it {scores[o.criterion]:.2f} for {o.criterion}: "
               f"{counted(scores[o.criterion], settings.rubric.label_threshold)})" if o.criterion in scores
               else "" if scores or o.action == "note" else " (not scored yet)")
        click.echo(visible(f"override {o.id}: {o.action} {o.criterion or 'all criteria'} on {o.item_id} by {o.by}{had}"))
    click.echo("run `ccqm rescore` to apply")


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def orgs(ctx: click.Context, as_json: bool) -> None:
    """Registered organisations, last harvest, current levels."""
    from harvester.app.status import org_status

    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(ctx)
    with _errors():
        rows = org_status(settings)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        levels = " ".join(f"{k}={v}" for k, v in r["levels"].items()) or "not scored"
        harvested = r["last_harvest"].strftime("%Y-%m-%d %H:%M UTC") if r["last_harvest"] else "never"
        click.echo(f"{r['id']:<28} {r['kind']:<9} harvested {harvested:<20} {r['award'] or 'no award':<9} {levels}")


@orgs.command("unattributed")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def orgs_unattributed(ctx: click.Context, as_json: bool) -> None:
    """Posts mentioning or tagging the scheme whose authors no organisation owns yet."""
    from harvester.app.handles import unattributed

    settings = _settings(ctx)
    with _errors():
        rows = unattributed(settings)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no unattributed posts")
    for r in rows:
        when = (r["published_at"] or r["first_seen"]).strftime("%Y-%m-%d")
        click.echo(visible(f"{when} {r['platform']:<9} {r['author'] or '(author hidden)':<28} {r['url'] or r['id']}"))


@orgs.command("link")
@click.argument("handle")
@click.argument("org")
@click.option("--platform", default=None, help="The handle's platform, when its form does not say.")
@_by_option
@click.pass_context
def orgs_link(ctx: click.Context, handle: str, org: str, platform: str | None, by: str) -> None:
    """Attach HANDLE (and its posts) to organisation ORG."""
    from harvester.app.handles import link

    settings = _settings(ctx)
    with _errors():
        platform, count = link(settings, handle, org, platform=platform, by=by)
    click.echo(visible(f"{platform} {handle} is now {org}'s; {count} stored post(s) attributed. "
                       "Run `ccqm rescore` to apply"))


@main.group()
def evidence() -> None:
    """Evidence no collector reaches, added by a validator."""


@evidence.command("add")
@click.argument("org")
@click.argument("url")
@click.option("--note", default="", help="Why it is evidence (kept with it).")
@_by_option
@click.pass_context
def evidence_add(ctx: click.Context, org: str, url: str, note: str, by: str) -> None:
    """Fetch URL (a LinkedIn or Threads post, a news article) and keep it as ORG's evidence.

    Fetched once through the same safe client as the harvest (address policy, robots.txt, size
    caps) and stored with its snapshot. `ccqm rescore ORG` then scores it."""
    from harvester.app.evidence import add_evidence

    settings = _settings(ctx)
    with _errors():
        item, outcome = add_evidence(settings, org, url, note=note, by=by)
    click.echo(visible(f"{url}: {outcome} evidence for {org} (item {item}). Run `ccqm rescore {org}` to apply"))


@main.command()
@click.argument("org")
@click.option("--warc", "warc", required=True, type=click.Path(dir_okay=False),
              help="The WARC file to write (gzipped record by record if it ends in .gz).")
@click.pass_context
def export(ctx: click.Context, org: str, warc: str) -> None:
    """Write ORG's raw records (every response its evidence came from, as received) as a WARC.

    Each is a `response` record: status line, headers and body as they came off the wire, dated
    when fetched, with the SHA-256 ccqm stored as its payload digest, so cited evidence replays
    in archive tools (pywb, ReplayWeb.page)."""
    from harvester.app.export import export_warc

    settings = _settings(ctx)
    with _errors():
        done = export_warc(settings, org, Path(warc))
    older = f", {done.resources} snapshot(s) kept before raw records were" if done.resources else ""
    click.echo(visible(f"wrote {done.records} record(s) for {org} to {done.path} "
                       f"({done.responses} response(s){older})"))


@main.command()
@click.option("--data", default="fixtures/labelled", show_default=True, type=click.Path(file_okay=False),
              help="The development set (a folder with raw/*.jsonl).")
@click.option("--decisions", is_flag=True,
              help="Learn from the validators' include and exclude decisions in the database as well.")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Where to write the artefact [default: the packaged classifier, replaced; with --decisions, "
                   "classifier.json.gz in the config folder, which scoring then uses].")
@click.pass_context
def train(ctx: click.Context, data: str, decisions: bool, out: str | None) -> None:
    """Fit the classifier on the development set; print its grouped cross-validation report.

    Needs the `train` extra (scikit-learn). Deterministic: the same set (and decisions) give the same
    artefact. A model that learned from decisions scores only this config folder's organisations;
    after an erasure, train it again."""
    from harvester.app.train import train as train_model, validators_decisions
    from harvester.config.classifier import FILE, packaged_classifier_path

    decided = []
    if decisions:
        settings = _settings(ctx)
        with _errors():
            decided = validators_decisions(settings)
        if not decided:
            raise click.UsageError(f"no validator has included or excluded an item with text in {settings.db_path} yet")
    target = Path(out) if out else settings.config_dir / FILE if decisions else packaged_classifier_path()
    with _errors():
        report, digest = train_model(Path(data), target, progress=lambda m: click.echo(m, err=True), decided=decided)
    for line in report.lines():
        click.echo(line)
    click.echo(f"wrote {target} (sha256 {digest})")


@main.command("config")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def config_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every effective setting, and where it came from (default, file, environment or flag)."""
    settings = _settings(ctx)
    rows = settings.effective()
    if as_json:
        _echo_json([{"setting": k, "value": v, "from": w} for k, v, w in rows])
        return
    for key, value, where in rows:
        shown = ", ".join(value) if isinstance(value, (list, tuple)) else value
        click.echo(f"{key:<32} {str(shown):<40} {where}")


@main.command()
@click.option("--limit", default=10, show_default=True, help="How many runs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def runs(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Recent harvests: when, how long, status, each source's counts and the errors."""
    from harvester.app.status import recent_runs

    settings = _settings(ctx, registry=False)
    with _errors():
        found = recent_runs(settings, limit)
    if as_json:
        _echo_json(found)
        return
    if not found:
        click.echo("no runs yet")
    for run in found:
        took = f"{run['seconds']:.0f} s" if run["seconds"] is not None else "still running or cut off"
        totals = ", ".join(f"{n} {k}" for k, n in sorted(run["counts"].items())) or "nothing"
        click.echo(f"{run['id']}  {run['started_at']:%Y-%m-%d %H:%M} UTC  {run['status']:<11} {took:<24} {totals}")
        for src in run["sources"]:
            if src["status"] != "ok" or src["refused"]:
                click.echo(visible(f"    {src['status']}: {src['source_id']} ({src['new']} new, {src['failed']} failed, "
                                   f"{src['refused'] or 0} refused)"))
        for err in run["errors"][:5]:
            click.echo(visible(f"    error: {err['message']}"))
        if len(run["errors"]) > 5:
            click.echo(f"    ... and {len(run['errors']) - 5} more errors (--json lists all)")


@main.command()
@click.pass_context
def schedule(ctx: click.Context) -> None:
    """Run the nightly harvest in the foreground until stopped (Ctrl-C)."""
    from harvester.scheduler import run_schedule

    settings = _settings(ctx)
    with _errors():
        run_schedule(settings, echo=lambda msg: click.echo(msg, err=True),
                     reload=lambda: load_settings(ctx.obj["config"], db=ctx.obj["db"]))


if __name__ == "__main__":
    main()

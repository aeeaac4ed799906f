"""One typed, frozen settings object, loaded once per command, up one ladder.

The ladder, lowest first: `default` (the dataclasses below) < `file` (`settings.toml` in the config
folder) < `environment` (`CCQM_<SECTION>_<KEY>`, and `CCQM_DB` for `paths.db`) < `flag` (`--db`,
`--out`). Every level goes through the same `_coerce`, so a value the file refuses is refused
from the environment too; an unknown key, an unknown `CCQM_*` variable, a wrong type or a value
out of range is a `ConfigError` naming the file or variable and the field. `Settings.origins`
says where each effective value came from (`ccqm config` prints it). Nothing is read at import.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from harvester.config.registry import Organisation, load_registry
from harvester.errors import ConfigError
from harvester.web.guard import parse_networks, url_refusal
from scoring.rubric import Rubric, RubricError, parse_rubric

DEFAULT_USER_AGENT = (
    "ccqm/0.1 (Cultural Cohesion Quality Mark evidence harvester; +https://www.example.gov.uk/ccqm)"
)
LEVELS = ("default", "file", "environment", "flag")
CONFIG_ENV = "CCQM_CONFIG"  # the config folder itself: read by the loader, not a setting
DB_ENV = "CCQM_DB"  # the contract's name for paths.db (DESIGN.md); CCQM_PATHS_DB is not accepted


def _limit(default: Any, lo: float | None = 0, hi: float | None = None, *, above: bool = False):
    """A field whose value must lie in [lo, hi] (or (lo, hi] with `above`)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "above": above})


@dataclass(frozen=True)
class HttpSettings:
    """The safe HTTP client's limits (see harvester.web.client)."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout_seconds: float = _limit(10.0, above=True)
    read_timeout_seconds: float = _limit(10.0, above=True)
    deadline_seconds: float = _limit(30.0, above=True)  # whole request, body included
    max_body_bytes: int = _limit(15_000_000, 1)  # after decompression
    max_redirects: int = _limit(5, 0, 30)
    retries: int = _limit(2, 0, 10)  # for timeouts, connection errors, 5xx and 429
    backoff_seconds: float = _limit(1.0)
    max_retry_after_seconds: float = _limit(120.0)
    # Networks that may be fetched although not public (e.g. "127.0.0.1/32" for the demo and tests).
    # Leave empty in production: it is what stops an organisation's URL reaching internal services.
    allow_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class HarvestSettings:
    """How much and how politely to harvest."""

    max_pages_per_site: int = _limit(60, 1)
    max_depth: int = _limit(3, 0, 50)
    # Generated pages: calendars (/calendar/2026/11/), one path's query variants, any one pattern of URL.
    max_calendar_pages: int = _limit(12, 1)
    max_query_variants: int = _limit(20, 1)
    max_pages_per_pattern: int = _limit(200, 1)
    recheck_days: int = _limit(30, 0)  # a page its sitemap says is unchanged is still read again this often
    delay_seconds: float = _limit(0.5)  # between two requests to one host; robots Crawl-delay wins if larger
    max_crawl_delay_seconds: float = _limit(30.0)
    concurrency: int = _limit(32, 1, 256)  # organisations harvested at once (each host still one request at a time)
    extract_workers: int = _limit(0, 0, 64)  # processes that read pages while threads fetch; 0: one per core but one
    max_posts_per_source: int = _limit(400, 1)
    site_budget_seconds: float = _limit(900.0, above=True)  # one source's wall time in a run; the rest waits
    batch_items: int = _limit(500, 1)  # what a source yields is committed every this many events ...
    batch_seconds: float = _limit(5.0, above=True)  # ... or this often, whichever comes first


@dataclass(frozen=True)
class PlatformSettings:
    """API base URLs: real services by default; the demo and tests point them at 127.0.0.1."""

    bluesky_appview_url: str = "https://public.api.bsky.app"
    bluesky_pds_url: str = "https://bsky.social"  # sessions and searchPosts (needs a login)
    youtube_feed_url: str = "https://www.youtube.com/feeds/videos.xml"
    graph_api_url: str = "https://graph.facebook.com/v21.0"  # Facebook and Instagram
    x_api_url: str = "https://api.x.com"


@dataclass(frozen=True)
class SchemeSettings:
    """The scheme's own accounts and tags: posts that mention or tag them are collected for the whole
    scheme and attributed to organisations by their authors' handles. Credentials come only from
    the environment: MASTODON_TOKEN, BLUESKY_HANDLE + BLUESKY_APP_PASSWORD, META_PAGE_TOKEN,
    X_BEARER_TOKEN."""

    # Nothing is collected for the scheme until these are set (config/settings.toml sets the real ones).
    tags: tuple[str, ...] = ("iCCQM",)
    mastodon_servers: tuple[str, ...] = ()  # the tag timelines are read on each, e.g. https://mastodon.social
    mastodon_account: str = ""  # the scheme's account, e.g. @iCCQM@mastodon.social: its mentions, with MASTODON_TOKEN
    bluesky_handle: str = ""  # searchPosts mentions= this handle and tag= each tag, e.g. iccqm.bsky.social
    facebook_page_id: str = ""  # /{page-id}/tagged, read with META_PAGE_TOKEN
    instagram_user_id: str = ""  # /{ig-user-id}/tags and mentioned_media, with META_PAGE_TOKEN
    instagram_hashtag_search: int = _limit(0, 0, 1)  # 1 where the deployment has Instagram Public Content Access
    x_user_id: str = ""  # /2/users/{id}/mentions; X is paid per post read, so off unless X_BEARER_TOKEN is set
    x_max_posts_per_run: int = _limit(200, 0)


@dataclass(frozen=True)
class ScheduleSettings:
    """The nightly harvest (`ccqm schedule`)."""

    cron: str = "0 2 * * *"
    timezone: str = "Europe/London"
    misfire_grace_seconds: int = _limit(6 * 3600, 1)


@dataclass(frozen=True)
class PathSettings:
    """Where data lives, relative to the working directory unless absolute."""

    db: str = "data/ccqm.duckdb"
    dossiers: str = "data/dossiers"


SECTIONS: dict[str, type] = {
    "http": HttpSettings,
    "harvest": HarvestSettings,
    "platforms": PlatformSettings,
    "scheme": SchemeSettings,
    "schedule": ScheduleSettings,
    "paths": PathSettings,
}
FLAGS = {"paths.db": "--db", "paths.dossiers": "--out"}


def env_name(section: str, key: str) -> str:
    """The environment variable that sets `section.key`."""
    return DB_ENV if (section, key) == ("paths", "db") else f"CCQM_{section}_{key}".upper()


def known_variables() -> tuple[str, ...]:
    return (CONFIG_ENV,) + tuple(env_name(s, f.name) for s, cls in SECTIONS.items() for f in fields(cls))


@dataclass(frozen=True)
class Settings:
    """Everything a command needs, decided before it starts."""

    config_dir: Path
    db_path: Path
    dossier_dir: Path
    http: HttpSettings = field(default_factory=HttpSettings)
    harvest: HarvestSettings = field(default_factory=HarvestSettings)
    platforms: PlatformSettings = field(default_factory=PlatformSettings)
    scheme: SchemeSettings = field(default_factory=SchemeSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    organisations: tuple[Organisation, ...] = ()
    rubric: Rubric | None = None
    origins: Mapping[str, str] = field(default_factory=dict)  # "http.retries" -> "environment CCQM_HTTP_RETRIES"

    @cached_property
    def model(self):
        """The learned classifier (loaded on first use: listing commands never pay for it)."""
        from harvester.config.classifier import classifier_path, load_classifier

        return load_classifier(classifier_path(self.config_dir))

    @property
    def scorer_key(self) -> str:
        """What classifications depend on besides the text: the rubric's and the model's versions."""
        from scoring.classify import scorer_key

        return scorer_key(self.rubric, self.model)

    def organisation(self, org_id: str) -> Organisation:
        for org in self.organisations:
            if org.id == org_id:
                return org
        known = ", ".join(o.id for o in self.organisations) or "none"
        raise ConfigError(f"unknown organisation {org_id!r} (registered: {known})",
                          file=str(self.config_dir / "organisations.toml"))

    def select(self, org_ids: tuple[str, ...] | list[str]) -> tuple[Organisation, ...]:
        """The named organisations, in the order given, or all of them when none are named."""
        return tuple(self.organisation(i) for i in org_ids) if org_ids else self.organisations

    def effective(self) -> list[tuple[str, Any, str]]:
        """(setting, value, where it came from) for every setting, in file order."""
        rows: list[tuple[str, Any, str]] = [("config", str(self.config_dir), self.origins.get("config", "default"))]
        for section in SECTIONS:
            values = (dataclasses.asdict(self._paths()) if section == "paths"
                      else dataclasses.asdict(getattr(self, section)))
            rows += [(f"{section}.{k}", v, self.origins.get(f"{section}.{k}", "default")) for k, v in values.items()]
        return rows

    def _paths(self) -> PathSettings:
        return PathSettings(db=str(self.db_path), dossiers=str(self.dossier_dir))


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing or malformed file is a ConfigError naming it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file", file=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None


def _coerce(value: Any, f: dataclasses.Field, kind: Any, *, where: str, name: str) -> Any:
    """`value` as field `f`'s declared type and within its limits, or a ConfigError.

    Strings (from the environment or a flag) are parsed; values from TOML must already have the
    type. The same limits apply whatever the level."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("expected a list of strings", file=where, field=name)
        return tuple(value)
    if isinstance(value, str) and kind is not str:
        try:
            value = kind(value.strip())
        except ValueError:
            raise ConfigError(f"expected {kind.__name__}, got {value!r}", file=where, field=name) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"expected {kind.__name__}, got {value!r}", file=where, field=name)
    if kind in (int, float):
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"must be a finite number, got {value!r}", file=where, field=name)
        lo, hi, above = f.metadata.get("lo"), f.metadata.get("hi"), f.metadata.get("above", False)
        if lo is not None and (value <= lo if above else value < lo):
            bound = f"more than {lo:g}" if above else f"at least {lo:g}"
            raise ConfigError(f"must be {bound}, got {value!r}", file=where, field=name)
        if hi is not None and value > hi:
            raise ConfigError(f"must be at most {hi:g}, got {value!r}", file=where, field=name)
    return value


def _section(name: str, cls: type, table: Mapping[str, Any], env: Mapping[str, str], flags: Mapping[str, Any],
             *, file: str, origins: dict[str, str]):
    """One section up the ladder: each field from the highest level that sets it."""
    hints = typing.get_type_hints(cls)
    unknown = set(table) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"unknown key (known: {', '.join(f.name for f in fields(cls))})",
                          file=file, field=f"{name}.{sorted(unknown)[0]}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        key, var = f"{name}.{f.name}", env_name(name, f.name)
        levels = [("file", file, table.get(f.name)), ("environment", f"environment {var}", env.get(var)),
                  ("flag", f"flag {FLAGS.get(key)}", flags.get(key))]
        for level, where, raw in levels:
            if raw is None:
                continue
            values[f.name] = _coerce(raw, f, hints[f.name], where=where if level != "file" else file, name=key)
            origins[key] = where if level != "file" else f"file {file}"
    return cls(**values)


def _check_environment(env: Mapping[str, str]) -> None:
    known = set(known_variables())
    for var in sorted(env):
        if var.startswith("CCQM_") and var not in known:
            close = [DB_ENV] if var == "CCQM_PATHS_DB" else difflib.get_close_matches(var, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"
            raise ConfigError(f"unknown variable{hint}", file=f"environment {var}")


def load_settings(config_dir: str | Path | None = None, *, db: str | Path | None = None,
                  out: str | Path | None = None, env: Mapping[str, str] | None = None,
                  registry: bool = True, folder_optional: bool = False) -> Settings:
    """Build the settings from the config folder, the environment and the flags given.

    `registry=False` skips the organisations (for commands such as `classify` that need none).
    `folder_optional=True` lets a command that needs only the rubric and the classifier (`classify`)
    run where there is no ./config and none was named: it then uses the packaged ones."""
    env = os.environ if env is None else env
    _check_environment(env)
    origins: dict[str, str] = {}
    if config_dir is not None:
        origins["config"] = "flag --config"
    elif env.get(CONFIG_ENV):
        config_dir, origins["config"] = env[CONFIG_ENV], f"environment {CONFIG_ENV}"
    named = config_dir is not None
    config_dir = Path(config_dir or "config")
    if not config_dir.is_dir() and (named or not folder_optional):
        raise ConfigError("config folder not found (give --config DIR or set CCQM_CONFIG)", file=str(config_dir))
    settings_file = config_dir / "settings.toml"
    data = read_toml(settings_file) if settings_file.exists() else {}
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section (known: {', '.join(SECTIONS)})", file=str(settings_file),
                          field=sorted(unknown)[0])
    flags = {k: str(v) for k, v in (("paths.db", db), ("paths.dossiers", out)) if v is not None}
    parts = {}
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError("expected a table", file=str(settings_file), field=name)
        parts[name] = _section(name, cls, table, env, flags, file=str(settings_file), origins=origins)
    paths: PathSettings = parts.pop("paths")
    allowed = _networks(parts["http"].allow_networks, origins.get("http.allow_networks", str(settings_file)))
    orgs = load_registry(config_dir / "organisations.toml") if registry else ()
    _check_addresses(orgs, allowed, str(config_dir / "organisations.toml"))
    return Settings(config_dir=config_dir, db_path=Path(paths.db), dossier_dir=Path(paths.dossiers), **parts,
                    organisations=orgs, rubric=load_rubric(config_dir / "rubric.toml"), origins=origins)


def default_rubric_path() -> Path:
    """The rubric shipped inside the package (config/rubric.toml in the repository is the same)."""
    return Path(str(resources.files("harvester.config").joinpath("rubric.toml")))


def load_rubric(path: Path) -> Rubric:
    """The scoring rubric (the packaged one where the config folder has none); its mistakes are
    ConfigErrors naming the file and field."""
    if not path.exists():
        path = default_rubric_path()
    try:
        return parse_rubric(read_toml(path))
    except RubricError as exc:
        raise ConfigError(exc.message, file=str(path), field=exc.field) from None


def _networks(networks: tuple[str, ...], where: str):
    try:
        return parse_networks(networks)
    except ValueError as exc:
        raise ConfigError(f"not an IP network ({exc})", file=where.removeprefix("file "),
                          field="http.allow_networks") from None


def _check_addresses(orgs: tuple[Organisation, ...], allowed, file: str) -> None:
    """A registered URL on a non-public address fails now, not at 2 a.m."""
    for org in orgs:
        for spec in org.sources:
            if not spec.locator.startswith(("http://", "https://")):
                continue
            why = url_refusal(spec.locator, allowed)
            if why:
                raise ConfigError(f"{spec.locator}: {why}", file=file,
                                  field=f"organisation {org.id!r}: {spec.platform}")


def with_overrides(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """A copy with some section values replaced (for tests and tools)."""
    changes = {name: replace(getattr(settings, name), **values) for name, values in sections.items()}
    return dataclasses.replace(settings, **changes)

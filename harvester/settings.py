"""One typed, frozen settings object, loaded once per command.

Priority, lowest first: the defaults below < `config/settings.toml` < `CCQM_<SECTION>_<KEY>`
environment variables < command-line flags. Every key has a default; an unknown key or a value of
the wrong type is a `ConfigError` naming the file (or variable) and the field, so a typo is never
silently ignored. Nothing is read at import time.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from harvester.errors import ConfigError
from harvester.registry import Organisation, load_registry
from scoring.rubric import Rubric, RubricError, parse_rubric

DEFAULT_USER_AGENT = (
    "ccqm/0.1 (Cultural Cohesion Quality Mark evidence harvester; +https://www.example.gov.uk/ccqm)"
)


@dataclass(frozen=True)
class HttpSettings:
    """The safe HTTP client's limits (see harvester.http)."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 20.0
    deadline_seconds: float = 60.0  # whole request, body included
    max_body_bytes: int = 15_000_000  # after decompression
    max_redirects: int = 5
    retries: int = 2  # for connection errors, 5xx and 429
    backoff_seconds: float = 1.0
    max_retry_after_seconds: float = 120.0
    # Networks that may be fetched although not public (e.g. "127.0.0.1/32" for the demo and tests).
    # Leave empty in production: it is what stops an organisation's URL reaching internal services.
    allow_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class HarvestSettings:
    """How much and how politely to harvest."""

    max_pages_per_site: int = 60
    max_depth: int = 3
    delay_seconds: float = 1.0  # between two requests to one host; robots Crawl-delay wins if larger
    max_crawl_delay_seconds: float = 30.0
    concurrency: int = 4  # organisations harvested at once
    max_posts_per_source: int = 400


@dataclass(frozen=True)
class PlatformSettings:
    """API base URLs: real services by default; the demo and tests point them at 127.0.0.1."""

    bluesky_appview_url: str = "https://public.api.bsky.app"
    youtube_feed_url: str = "https://www.youtube.com/feeds/videos.xml"


@dataclass(frozen=True)
class ScheduleSettings:
    """The nightly harvest (`ccqm schedule`)."""

    cron: str = "0 2 * * *"
    timezone: str = "Europe/London"
    misfire_grace_seconds: int = 6 * 3600


@dataclass(frozen=True)
class PathSettings:
    """Where data lives, relative to the working directory unless absolute."""

    db: str = "data/ccqm.duckdb"
    dossiers: str = "data/dossiers"


SECTIONS: dict[str, type] = {
    "http": HttpSettings,
    "harvest": HarvestSettings,
    "platforms": PlatformSettings,
    "schedule": ScheduleSettings,
    "paths": PathSettings,
}


@dataclass(frozen=True)
class Settings:
    """Everything a command needs, decided before it starts."""

    config_dir: Path
    db_path: Path
    dossier_dir: Path
    http: HttpSettings = field(default_factory=HttpSettings)
    harvest: HarvestSettings = field(default_factory=HarvestSettings)
    platforms: PlatformSettings = field(default_factory=PlatformSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    organisations: tuple[Organisation, ...] = ()
    rubric: Rubric | None = None

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


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing or malformed file is a ConfigError naming it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None


def _coerce(value: Any, kind: Any, *, where: str, name: str, from_env: bool) -> Any:
    """`value` as the declared type of a settings field, or a ConfigError."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        if from_env:
            value = [part.strip() for part in str(value).split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("expected a list of strings", file=where, field=name)
        return tuple(value)
    if from_env:
        try:
            if kind is bool:
                return str(value).strip().lower() in {"1", "true", "yes", "on"}
            return kind(value)
        except ValueError:
            raise ConfigError(f"expected {kind.__name__}, got {value!r}", file=where, field=name) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"expected {kind.__name__}, got {value!r}", file=where, field=name)
    if kind in (int, float) and value < 0:
        raise ConfigError(f"must not be negative, got {value!r}", file=where, field=name)
    return value


def _section(cls: type, table: Mapping[str, Any], env: Mapping[str, str], *, file: str, section: str):
    hints = typing.get_type_hints(cls)
    unknown = set(table) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"unknown key (known: {', '.join(f.name for f in fields(cls))})",
                          file=file, field=f"{section}.{sorted(unknown)[0]}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        env_name = f"CCQM_{section}_{f.name}".upper()
        if env_name in env:
            values[f.name] = _coerce(env[env_name], hints[f.name], where=f"environment {env_name}",
                                     name=f"{section}.{f.name}", from_env=True)
        elif f.name in table:
            values[f.name] = _coerce(table[f.name], hints[f.name], where=file,
                                     name=f"{section}.{f.name}", from_env=False)
    return cls(**values)


def load_settings(config_dir: str | Path | None = None, *, db: str | Path | None = None,
                  out: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the config folder, the environment and the flags given."""
    env = os.environ if env is None else env
    config_dir = Path(config_dir or env.get("CCQM_CONFIG") or "config")
    if not config_dir.is_dir():
        raise ConfigError("config folder not found (give --config DIR or set CCQM_CONFIG)",
                          file=str(config_dir))
    settings_file = config_dir / "settings.toml"
    data = read_toml(settings_file) if settings_file.exists() else {}
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section (known: {', '.join(SECTIONS)})",
                          file=str(settings_file), field=sorted(unknown)[0])
    parts = {}
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError("expected a table", file=str(settings_file), field=name)
        parts[name] = _section(cls, table, env, file=str(settings_file), section=name)
    paths: PathSettings = parts.pop("paths")
    db_path = Path(db or env.get("CCQM_DB") or paths.db)
    dossier_dir = Path(out or paths.dossiers)
    _check_networks(parts["http"].allow_networks, str(settings_file))
    return Settings(config_dir=config_dir, db_path=db_path, dossier_dir=dossier_dir, **parts,
                    organisations=load_registry(config_dir / "organisations.toml"),
                    rubric=load_rubric(config_dir / "rubric.toml"))


def load_rubric(path: Path) -> Rubric:
    """The scoring rubric; its mistakes are ConfigErrors naming the file and field."""
    try:
        return parse_rubric(read_toml(path))
    except RubricError as exc:
        raise ConfigError(exc.message, file=str(path), field=exc.field) from None


def _check_networks(networks: tuple[str, ...], file: str) -> None:
    import ipaddress

    for net in networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"not an IP network: {net!r}", file=file, field="http.allow_networks") from None


def with_overrides(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """A copy with some section values replaced (for tests and tools)."""
    changes = {name: replace(getattr(settings, name), **values) for name, values in sections.items()}
    return dataclasses.replace(settings, **changes)

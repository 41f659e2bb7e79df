"""Settings: a TOML file plus ``NEWSTRADER_*`` environment overrides, validated by pydantic.

Secrets (venue private keys, HMAC secrets) come only from the environment
(``NEWSTRADER_<NAME>_SECRET``) or a ``secret_file``; one written in the TOML is refused, so
a config file can be shared or committed without leaking a key. Every problem becomes a
`ConfigError` naming the key, which the CLI prints as one line (exit 2).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from newstrader.engine.risk import SizingSettings
from newstrader.engine.settings import EngineSettings

ENV_PREFIX = "NEWSTRADER_"
WEB_TOKEN_ENV = "NEWSTRADER_WEB_TOKEN"
TELEGRAM_TOKEN_ENV = "NEWSTRADER_TELEGRAM_TOKEN"
TelegramEvent = Literal["trade", "drift", "quarantine", "tpsl", "pause", "lifecycle"]
TELEGRAM_EVENTS: tuple[TelegramEvent, ...] = get_args(TelegramEvent)

# Default base URLs per venue kind and network; `url` in a venue overrides them.
DEFAULT_URLS: dict[str, dict[str, str]] = {
    "hyperliquid": {
        "sim": "http://127.0.0.1:8900/hyperliquid",
        "testnet": "https://api.hyperliquid-testnet.xyz",
        "mainnet": "https://api.hyperliquid.xyz",
    },
    "aster": {
        "sim": "http://127.0.0.1:8900/aster",
        "testnet": "https://fapi.asterdex-testnet.com",
        "mainnet": "https://fapi.asterdex.com",
    },
}

# Hosts that trade real money whatever a venue's `network` says: the label cannot downgrade them.
MAINNET_HOSTS: frozenset[str] = frozenset(
    urlsplit(urls["mainnet"]).hostname or "" for urls in DEFAULT_URLS.values()
)
MIN_WEB_TOKEN_LENGTH = 16

_PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_VENUE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
# A validator that wants its error filed under a field (not the model) prefixes the message.
_FIELD_TAG = re.compile(r"^@(?P<field>[a-z_][\w\[\].]*): (?P<problem>.*)$", re.DOTALL)


class ConfigError(Exception):
    """A bad configuration value: `key` is the dotted path (``venues[0].network``)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def secret_env_name(venue_name: str) -> str:
    """The env variable holding a venue's secret: ``NEWSTRADER_<NAME>_SECRET`` (non-alnum → ``_``)."""
    return f"{ENV_PREFIX}{re.sub(r'[^A-Za-z0-9]', '_', venue_name).upper()}_SECRET"


def _read_secret_file(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"is a directory, not a file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc.__class__.__name__}") from None
    if not value:
        raise ValueError(f"file is empty: {path}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


class ExitsSettings(_Section):
    """Exchange-side take-profit/stop-loss and time/loss exits."""

    take_profit_pct: Decimal | None = Field(default=Decimal(2), gt=0, allow_inf_nan=False)
    stop_loss_pct: Decimal | None = Field(default=Decimal(1), gt=0, allow_inf_nan=False)
    max_hold_s: int | None = Field(default=None, gt=0)
    daily_loss_limit_usd: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)
    on_protection_failure: Literal["close", "keep"] = "close"
    dead_man_switch_s: int | None = Field(default=None, gt=0)


class VenueSettings(_Section):
    """One account on one exchange. The secret never comes from the TOML file."""

    name: str
    kind: Literal["hyperliquid", "aster"]
    network: Literal["sim", "testnet", "mainnet"] = "sim"
    url: str | None = None
    account: str | None = None
    signer: str | None = None
    api_key: str | None = None
    auth: Literal["v3", "hmac"] = "v3"
    secret_file: Path | None = None
    secret: SecretStr | None = None
    sim_fund_usd: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)
    # How long after sending an order may still execute (Hyperliquid `expiresAfter`, Aster HMAC
    # `recvWindow`, ≤ 60 s there). Aster v3's window is the venue's fixed ±10 s nonce window.
    # A lost order is "in flight" for this long (plus a grace): shorter means faster recovery.
    order_validity_s: float | None = Field(default=None, gt=0, le=60)

    @model_validator(mode="after")
    def _validity_settable(self) -> VenueSettings:
        if self.order_validity_s is not None and self.kind == "aster" and self.auth == "v3":
            raise ValueError(
                "order_validity_s: Aster v3 orders are valid for the venue's own 10 s nonce window;"
                ' it can be set with auth = "hmac" (recvWindow) or on Hyperliquid'
            )
        return self

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _VENUE_NAME.match(value):
            raise ValueError("must start with a letter and use only letters, digits, '-' or '_' (≤ 40)")
        return value

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return None if value is None else value.rstrip("/")

    @field_validator("account", "signer")
    @classmethod
    def _address_shape(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError("must be a 0x-prefixed 20-byte hex address")
        return value

    @field_validator("secret_file")
    @classmethod
    def _secret_file_readable(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser()
        _read_secret_file(path)
        return path

    @model_validator(mode="after")
    def _sim_fund_only_on_the_sim(self) -> VenueSettings:
        if self.sim_fund_usd is not None and self.network != "sim":
            raise ValueError('@sim_fund_usd: only with network = "sim" (real accounts are funded by you)')
        return self

    @model_validator(mode="after")
    def _resolve_secret(self) -> VenueSettings:
        """Explicit value, else env ``NEWSTRADER_<NAME>_SECRET``, else `secret_file`; then check its shape."""
        if self.secret is None:
            from_env = os.environ.get(secret_env_name(self.name), "").strip()
            if from_env:
                self.secret = SecretStr(from_env)
            elif self.secret_file is not None:
                self.secret = SecretStr(_read_secret_file(self.secret_file))
        if self.kind == "aster" and self.auth == "hmac" and self.secret is not None and not self.api_key:
            raise ValueError('@api_key: required with auth = "hmac" (the secret alone cannot sign)')
        if (
            self.secret is not None
            and self.signs_with_private_key
            and not _PRIVATE_KEY.match(self.secret.get_secret_value())
        ):
            raise ValueError(
                f"@secret: not a 32-byte hex private key (from {self.secret_source}); value not shown"
            )
        return self

    @property
    def signs_with_private_key(self) -> bool:
        """Hyperliquid and Aster v3 sign with an EVM key; Aster legacy signs with an HMAC secret."""
        return self.kind == "hyperliquid" or self.auth == "v3"

    @property
    def secret_env(self) -> str:
        """The env variable this venue's secret is read from."""
        return secret_env_name(self.name)

    @property
    def secret_source(self) -> str:
        """Where the secret came from, for messages (never the value)."""
        if os.environ.get(self.secret_env, "").strip():
            return f"env {self.secret_env}"
        if self.secret_file is not None:
            return f"secret_file {self.secret_file}"
        return "settings"

    @property
    def base_url(self) -> str:
        """`url` when given, else the network's default for this kind of venue."""
        return self.url or DEFAULT_URLS[self.kind][self.network]

    @property
    def is_mainnet(self) -> bool:
        """Real money: labelled mainnet, or a url on a mainnet host whatever the label says."""
        return self.network == "mainnet" or (urlsplit(self.base_url).hostname or "").lower() in MAINNET_HOSTS


class WebhookSource(_Section):
    """Accept news on the bot's ``POST /api/news`` under this source name."""

    name: str = "webhook"


class RssSource(_Section):
    """Poll one RSS/Atom feed."""

    url: str
    interval_s: float = Field(default=60.0, gt=0)
    name: str | None = None


class WebsocketSource(_Section):
    """Read JSON messages from a WebSocket; `fields` maps our names to the message's keys."""

    url: str
    preset: Literal["treeofalpha", "bwenews", "announcements"] | None = None  # a known feed's field map
    fields: dict[str, str] = Field(default_factory=dict)
    name: str | None = None


class ReplaySource(_Section):
    """Replay a JSONL news file with its relative timing scaled by `speed`."""

    path: Path
    speed: float = Field(default=1.0, gt=0)


class NewsSettings(_Section):
    """Where news comes from and which items may become signals."""

    webhook: list[WebhookSource] = Field(default_factory=list)
    rss: list[RssSource] = Field(default_factory=list)
    websocket: list[WebsocketSource] = Field(default_factory=list)
    replay: list[ReplaySource] = Field(default_factory=list)
    rules: Path | None = None
    dedupe_window_s: float = Field(default=3600.0, ge=0)
    cooldown_s: float = Field(default=0.0, ge=0)
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    max_age_s: float = Field(default=300.0, gt=0)


class WebSettings(_Section):
    """The dashboard and HTTP API; the token comes from env ``NEWSTRADER_WEB_TOKEN`` when set."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: SecretStr | None = None
    allowed_hosts: list[str] = Field(default_factory=list)  # Host names besides loopback and `host`

    @model_validator(mode="after")
    def _token_from_env(self) -> WebSettings:
        from_env = os.environ.get(WEB_TOKEN_ENV, "").strip()
        if from_env:
            self.token = SecretStr(from_env)
        if self.token is not None and len(self.token.get_secret_value()) < MIN_WEB_TOKEN_LENGTH:
            where = f"env {WEB_TOKEN_ENV}" if from_env else "[web] token"
            raise ValueError(
                f"@web.token: too short ({where}): use at least {MIN_WEB_TOKEN_LENGTH} characters, "
                "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`"
            )
        return self


class TelegramSettings(_Section):
    """Alerts to, and commands from, the configured Telegram chats; the token comes only from
    env ``NEWSTRADER_TELEGRAM_TOKEN`` (see `newstrader.telegram`)."""

    chat_ids: list[int] = Field(min_length=1)
    events: list[TelegramEvent] = Field(default_factory=lambda: list(TELEGRAM_EVENTS))
    api_url: str = "https://api.telegram.org/bot"  # the Bot API (or a local Bot API server)
    min_interval_s: float = Field(default=1.0, ge=0)  # per chat: the Bot API allows ~1 message/s
    coalesce_s: float = Field(default=0.5, ge=0)  # events within this window share one message
    request_timeout_s: float = Field(default=10.0, gt=0)
    queue_size: int = Field(default=500, ge=10, le=100_000)
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _token_from_env(self) -> TelegramSettings:
        from_env = os.environ.get(TELEGRAM_TOKEN_ENV, "").strip()
        if from_env:
            self.token = SecretStr(from_env)
        if self.token is None:
            raise ValueError(f"@token: set env {TELEGRAM_TOKEN_ENV} (the token BotFather gave you)")
        return self


class JournalSettings(_Section):
    """Where the journal lives: any SQLAlchemy URL; SQLite runs in WAL mode."""

    url: str = "sqlite:///newstrader.db"

    @field_validator("url")
    @classmethod
    def _parseable(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy URL (e.g. sqlite:///newstrader.db)") from None
        return value


class BusSettings(_Section):
    """The NATS JetStream news stream: `newstrader ingest` publishes to it, bots consume from it."""

    url: str | None = None
    stream: str = Field(default="NEWSTRADER_NEWS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    subject: str = Field(default="newstrader.news", pattern=r"^[A-Za-z0-9_.-]{1,200}$")
    ack_wait_s: float = Field(default=10.0, gt=0)
    duplicate_window_s: float = Field(default=3600.0, gt=0)

    @field_validator("url")
    @classmethod
    def _nats_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(nats|tls)://[^\s/]+", value):
            raise ValueError("must be a nats:// or tls:// URL")
        return value


class ClusterSettings(_Section):
    """Several bots on one PostgreSQL journal: each account is owned by one of them at a time."""

    instance: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    heartbeat_s: float = Field(default=0.5, gt=0)
    session_timeout_s: float = Field(default=3.0, gt=0)

    @model_validator(mode="after")
    def _heartbeat_inside_timeout(self) -> ClusterSettings:
        if self.heartbeat_s * 2 >= self.session_timeout_s:
            raise ValueError("@heartbeat_s: must be under half of session_timeout_s")
        return self


class Settings(BaseSettings):
    """The whole configuration; env ``NEWSTRADER_<SECTION>__<KEY>`` overrides the TOML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
        validate_default=True,
        allow_inf_nan=False,
    )

    engine: EngineSettings = Field(default_factory=EngineSettings)
    sizing: SizingSettings = Field(default_factory=SizingSettings)
    exits: ExitsSettings = Field(default_factory=ExitsSettings)
    venues: list[VenueSettings] = Field(default_factory=list)
    news: NewsSettings = Field(default_factory=NewsSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)
    telegram: TelegramSettings | None = None
    bus: BusSettings = Field(default_factory=BusSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML arrives as init kwargs; env comes first so it overrides the file.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _unique_venue_names(self) -> Settings:
        seen: set[str] = set()
        for index, venue in enumerate(self.venues):
            if venue.name.lower() in seen:
                raise ValueError(f"@venues[{index}].name: duplicate venue name {venue.name!r}")
            seen.add(venue.name.lower())
        return self

    def secrets(self) -> list[str]:
        """Every configured secret value (keys, HMAC secrets and keys, web token), for log redaction."""
        values: list[str] = []
        for venue in self.venues:
            if venue.secret is not None:
                values.append(venue.secret.get_secret_value())
            if venue.api_key:
                values.append(venue.api_key)
        if self.web.token is not None:
            values.append(self.web.token.get_secret_value())
        if self.telegram is not None and self.telegram.token is not None:
            values.append(self.telegram.token.get_secret_value())
        return [v for v in values if v]

    def venue(self, name: str) -> VenueSettings:
        """The venue called `name`."""
        for venue in self.venues:
            if venue.name == name:
                return venue
        raise KeyError(name)


# --------------------------------------------------------------------------- loading


def _key_of(loc: Sequence[int | str]) -> str:
    """``('venues', 0, 'network')`` → ``venues[0].network``; an odd key name is quoted (one line)."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif not re.fullmatch(r"[\w-]+", part):
            key += f"[{json.dumps(part)}]"
        else:
            key += f".{part}" if key else str(part)
    return key or "config"


# pydantic's words → the TOML words a user knows.
_PLAIN_WORDS = re.compile(r"a valid dictionary or instance of \w+|a valid dictionary|a valid list")


def _error_from_validation(exc: ValidationError) -> ConfigError:
    """The first problem of a pydantic error as a ConfigError (one line, the key named)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    loc = [part for part in first["loc"] if isinstance(part, int | str)]
    problem = str(first["msg"])
    kind = first["type"]
    if kind == "extra_forbidden":
        problem = "unknown key"
    elif kind == "missing":
        problem = "required key is missing"
    elif problem.startswith(("Value error, ", "Assertion failed, ")):
        problem = problem.split(", ", 1)[1]
    tagged = _FIELD_TAG.match(problem)
    if tagged:
        field = tagged["field"]
        problem = tagged["problem"]
        if field.startswith(("venues", "web.")):  # tagged from the root: the path is complete
            return ConfigError(field, problem)
        loc.append(field)
    problem = _PLAIN_WORDS.sub(lambda m: "a table" if "dictionary" in m.group(0) else "an array", problem)
    problem = re.sub(r"valid path for <class '[\w.]+'>", "valid path", problem)
    problem = " ".join(problem.split())  # always one line
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ConfigError(_key_of(loc), problem)


def _refuse_secrets_in_file(data: Mapping[str, Any]) -> None:
    telegram = data.get("telegram")
    if isinstance(telegram, Mapping) and "token" in telegram:
        raise ConfigError(
            "telegram.token", f"the bot token is not allowed in the config file; set env {TELEGRAM_TOKEN_ENV}"
        )
    venues = data.get("venues")
    if not isinstance(venues, list):
        return
    for index, venue in enumerate(venues):
        if isinstance(venue, Mapping) and "secret" in venue:
            name = venue.get("name")
            env = secret_env_name(name) if isinstance(name, str) and name else "NEWSTRADER_<NAME>_SECRET"
            raise ConfigError(
                f"venues[{index}].secret",
                f"secrets are not allowed in the config file; set env {env} or secret_file",
            )


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; any failure is a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file (newstrader init writes an example)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc.__class__.__name__}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {' '.join(str(exc).split())}") from None


def settings_from_mapping(data: Mapping[str, Any]) -> Settings:
    """Validate an already-parsed config (plus env overrides); problems raise ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError("config", "must be a table of sections")
    _refuse_secrets_in_file(data)
    try:
        settings = Settings(**dict(data))
    except ValidationError as exc:
        raise _error_from_validation(exc) from None
    except SettingsError as exc:  # an env override that does not parse
        raise ConfigError("env", " ".join(str(exc).split())) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError("config", " ".join(str(exc).split())) from None
    # Every loaded secret is protected in logs from here on, whoever loaded it.
    from newstrader.logging_setup import add_secrets

    add_secrets(settings.secrets())
    return settings


def _anchor_paths(data: dict[str, Any], base: Path) -> None:
    """Make relative paths in the file relative to the file's folder, not the current directory."""

    def anchor(container: Any, key: str) -> None:
        if isinstance(container, dict):
            value = container.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                container[key] = str(base / value)

    venues = data.get("venues")
    for venue in venues if isinstance(venues, list) else []:
        anchor(venue, "secret_file")
    news = data.get("news")
    if isinstance(news, dict):
        anchor(news, "rules")
        replays = news.get("replay")
        for replay in replays if isinstance(replays, list) else []:
            anchor(replay, "path")
    journal = data.get("journal")
    if isinstance(journal, dict) and isinstance(journal.get("url"), str):
        journal["url"] = _anchor_sqlite_url(journal["url"], base)


def _anchor_sqlite_url(url: str, base: Path) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # validation names the problem
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return url
    if Path(database).is_absolute():
        return url
    return parsed.set(database=str(base / database)).render_as_string(hide_password=False)


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path` (a TOML file; None = defaults) plus env overrides; raises ConfigError.

    Relative paths in the file (secret_file, news.rules, replay paths, a SQLite journal) are
    relative to the file's folder."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        data = read_toml(path)
        _anchor_paths(data, path.resolve().parent)
    return settings_from_mapping(data)


class MainnetRefused(ConfigError):
    """A mainnet venue without ``--live``: the bot is never built."""


def require_live(settings: Settings, live: bool) -> None:
    """Refuse mainnet venues (by label or by url) unless the operator passed ``--live``."""
    if live:
        return
    for index, venue in enumerate(settings.venues):
        if venue.network == "mainnet":
            raise MainnetRefused(
                f"venues[{index}].network",
                f'"mainnet" ({venue.name}) trades real money: pass --live to allow it',
            )
        if venue.is_mainnet:
            raise MainnetRefused(
                f"venues[{index}].url",
                f"{venue.base_url} is a mainnet host ({venue.name} says network = "
                f'"{venue.network}"): it trades real money; pass --live to allow it',
            )


def require_secrets(settings: Settings) -> None:
    """Every venue the bot trades on needs its key; name the variable that would hold it."""
    for index, venue in enumerate(settings.venues):
        if venue.secret is None:
            raise ConfigError(
                f"venues[{index}]",
                f"no key for {venue.name}: set env {venue.secret_env} or secret_file",
            )


# --------------------------------------------------------------------------- example config

EXAMPLE_TEMPLATE = """\
# newstrader configuration, written by `newstrader init`.
# Every key is optional; the values shown are the defaults. Unknown keys are errors.
# Env overrides any key: NEWSTRADER_<SECTION>__<KEY>, e.g. NEWSTRADER_SIZING__NOTIONAL_USD=50.
# Secrets never go in this file: a venue's key comes from env NEWSTRADER_<NAME>_SECRET
# (name upper-cased, other characters -> "_") or from `secret_file`.
# Relative paths (secret_file, rules, replay paths, a SQLite journal) are relative to this file.

[engine]
mode = "target"            # "target": one order to the target position | "close_then_open": close, then open
max_signal_age_s = 30      # stop retrying a signal older than this
reconcile_interval_s = 30  # read every venue and journal drift (manual trades, liquidations) this often
position_cache_ttl_ms = 0  # 0 = always read the exchange position before acting
conflict_window_s = 0      # opposite signals on one coin within this window: the newer wins
order_timeout_s = 5
position_source = "stream"  # "stream": decide from the account stream while it is current, with the
                           # REST read alongside the order | "rest": read the exchange before ordering
stream_max_silence_ms = 5000  # a stream silent this long is not current (REST until it resyncs)

[sizing]
notional_usd = 100         # position size in USD per signal
leverage = 3
# equity_fraction = 0.1    # or: this fraction of account equity
# [sizing.per_coin.BTC]
# notional_usd = 200
# leverage = 5

[exits]
take_profit_pct = 2        # exchange-side take-profit, % from entry
stop_loss_pct = 1          # exchange-side stop-loss, % from entry
# max_hold_s = 3600        # close a position held longer than this
# daily_loss_limit_usd = 100
on_protection_failure = "close"  # TP/SL could not be placed: "close" the position or "keep" it
# dead_man_switch_s = 60

# network = "sim" talks to the local simulator: start it first with `newstrader sim`
# (http://127.0.0.1:8900). `newstrader init --sim` writes this file with fresh keys in keys/
# and `sim_fund_usd`, so `run` and `check` create and fund the accounts there by themselves.
# network = "testnet" | "mainnet" uses the real exchange; mainnet also needs `run --live`
# (a url on a mainnet host counts as mainnet whatever `network` says).

{venues}
[news]
dedupe_window_s = 3600     # the same headline again within this window is ignored
cooldown_s = 0             # minimum seconds between signals on one coin
min_confidence = 0.5       # parser confidence needed to act
max_age_s = 300            # ignore news published longer ago than this
# rules = "rules.toml"     # coins, aliases, bullish/bearish terms (default: the bundled rules)
# [[news.webhook]]         # POST /api/news on the web port
# name = "tradingview"
# [[news.rss]]
# url = "https://example.com/feed.xml"
# interval_s = 60
# [[news.websocket]]
# url = "wss://example.com/stream"
# preset = "treeofalpha"   # or "bwenews", "announcements"; fields below override it
# fields = { title = "headline", body = "text", id = "id", published_at = "time" }
# [[news.replay]]
# path = "news.jsonl"
# speed = 1.0

[web]
host = "127.0.0.1"
port = 8080
# token: env NEWSTRADER_WEB_TOKEN (at least 16 characters); generated and printed at start when unset
# allowed_hosts = ["bot.example.org"]  # Host names besides loopback and `host` (DNS rebinding guard)

[journal]
url = "sqlite:///newstrader.db"   # any SQLAlchemy URL; SQLite runs in WAL mode
# url = "postgresql+psycopg://newstrader@db-host/newstrader"   # several bots share one record

[bus]                      # the NATS JetStream news stream; `newstrader ingest` publishes to it
# url = "nats://127.0.0.1:4222"   # set: each owned account reads the stream (its own durable consumer)
stream = "NEWSTRADER_NEWS"
subject = "newstrader.news"
ack_wait_s = 10.0          # an item not acked by then is delivered again (to the account's next owner)
duplicate_window_s = 3600.0   # the server drops a second copy of a news id within this window

[cluster]                  # with a PostgreSQL journal: each account is traded by one bot at a time
# instance = "bot-a"       # this bot's name in the journal and `newstrader cluster` (default: host-pid)
heartbeat_s = 0.5
session_timeout_s = 3.0    # a paused or cut-off owner loses its accounts to a standby after this

# Alerts and commands on Telegram (README: "Telegram"). The token: env NEWSTRADER_TELEGRAM_TOKEN.
# [telegram]
# chat_ids = [123456789]     # only these chats get alerts and are obeyed
# events = ["trade", "drift", "quarantine", "tpsl", "pause", "lifecycle"]
"""


EXAMPLE_VENUES = """\
[[venues]]
name = "hyperliquid"
kind = "hyperliquid"
network = "sim"
# url = "http://127.0.0.1:8900/hyperliquid"   # overrides the network's default
# account = "0x..."                            # the trading address
# key: env NEWSTRADER_HYPERLIQUID_SECRET (the account's or an approved agent's private key)
# secret_file = "keys/hyperliquid.key"

[[venues]]
name = "aster"
kind = "aster"
network = "sim"
auth = "v3"                # "v3": API-wallet signatures | "hmac": legacy API key + HMAC secret
# url = "http://127.0.0.1:8900/aster"         # overrides the network's default
# account = "0x..."                           # the user address
# signer = "0x..."                            # the API wallet that signs for it (v3)
# api_key = "..."                             # legacy HMAC key (auth = "hmac")
# key: env NEWSTRADER_ASTER_SECRET (the API wallet's private key, or the HMAC secret)
# secret_file = "keys/aster.key"
"""

SIM_VENUES = """\
[[venues]]
name = "hyperliquid"
kind = "hyperliquid"
network = "sim"
url = "{sim_url}/hyperliquid"
account = "{hl_account}"
secret_file = "keys/hyperliquid.key"   # the account's private key (mode 0600), written by init --sim
sim_fund_usd = 10000       # run/check create and fund this account on the simulator if missing

[[venues]]
name = "aster"
kind = "aster"
network = "sim"
auth = "v3"                # "v3": API-wallet signatures | "hmac": legacy API key + HMAC secret
url = "{sim_url}/aster"
account = "{aster_account}"                  # the user address
signer = "{aster_signer}"                   # the API wallet that signs for it
secret_file = "keys/aster.key"         # the API wallet's private key (mode 0600), written by init --sim
sim_fund_usd = 10000
"""

EXAMPLE_CONFIG = EXAMPLE_TEMPLATE.replace("{venues}", EXAMPLE_VENUES)


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force to overwrite)")


def write_example(path: Path, *, force: bool = False) -> None:
    """Write the commented example config; refuses to overwrite unless `force`."""
    _refuse_overwrite(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXAMPLE_CONFIG, encoding="utf-8")


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from its creation, never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)  # an existing file keeps its old mode through O_CREAT


def write_sim_setup(path: Path, *, sim_url: str, force: bool = False) -> list[Path]:
    """`init --sim`: the example config on simulator venues with fresh keys in `keys/` (0600).

    `run` and `check` fund the accounts on the simulator (`sim_fund_usd`). Returns the key files."""
    from newstrader.sim.accounts import SimAccounts

    keys = path.parent / "keys"
    key_files = [keys / "hyperliquid.key", keys / "aster.key"]
    for target in (path, *key_files):
        _refuse_overwrite(target, force)
    accounts = SimAccounts.fresh()
    venues = SIM_VENUES.format(
        sim_url=sim_url.rstrip("/"),
        hl_account=accounts.hl_address,
        aster_account=accounts.aster_user,
        aster_signer=accounts.aster_signer,
    )
    write_private(key_files[0], accounts.hl_key + "\n")
    write_private(key_files[1], accounts.aster_signer_key + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXAMPLE_TEMPLATE.replace("{venues}", venues), encoding="utf-8")
    return key_files

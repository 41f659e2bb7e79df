"""Logging: structlog on top of stdlib logging, with every configured secret replaced by ``***``.

Output goes to stderr (stdout stays for command output such as ``--json``):
- ``--log-json``: one JSON object per line;
- otherwise a console line, coloured on a terminal and plain when piped (CI, files), so
  JSON appears only when asked for.

Redaction happens at every exit, so no path around it exists: on a structlog event before it
becomes a stdlib record (so other handlers, e.g. pytest's capture, see it clean), on the
rendered line itself, and in the stdlib ``LogRecord`` factory, which catches records of
libraries (uvicorn, httpx) even when they log through their own handlers.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

import structlog
from structlog.typing import EventDict, WrappedLogger

REDACTED: Final = "***"
MIN_SECRET_LENGTH: Final = 4  # shorter strings are not secrets, and redacting them would shred logs
SECRET_ENV_PATTERN: Final = re.compile(r"^NEWSTRADER_(?:.+_SECRET|WEB_TOKEN|TELEGRAM_TOKEN)$")
_HEX_KEY = re.compile(r"^(0x)?([0-9a-fA-F]{40,})$")
_SAFE_TYPES = (int, float, bool, Decimal, datetime, date, type(None))


def _variants(secret: str) -> set[str]:
    """The forms a secret may take in text: as given, case-folded hex, with/without 0x, JSON-escaped."""
    forms = {secret}
    hex_match = _HEX_KEY.match(secret)
    if hex_match:
        bare = hex_match.group(2)
        for body in (bare, bare.lower(), bare.upper()):
            forms.update({body, "0x" + body, "0X" + body})
    forms.add(jsonlib.dumps(secret)[1:-1])
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class SecretRedactor:
    """A structlog processor (and text filter) that replaces known secret values with ``***``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def set(self, secrets: Iterable[str]) -> None:
        """Replace the set of secrets."""
        with self._lock:
            self._secrets = frozenset()
            self._pattern = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Protect more values (e.g. a web token generated at start-up)."""
        fresh = {s.strip() for s in secrets if isinstance(s, str) and len(s.strip()) >= MIN_SECRET_LENGTH}
        with self._lock:
            if fresh <= self._secrets:
                return
            self._secrets = self._secrets | fresh
            forms = set().union(*(_variants(s) for s in self._secrets))
            # Longest first, so a secret containing another is replaced whole.
            alternation = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
            self._pattern = re.compile(alternation)

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        """`value` with every secret replaced."""
        pattern = self._pattern
        return value if pattern is None else pattern.sub(REDACTED, value)

    def value(self, value: Any) -> Any:
        """A copy of `value` (str, containers, any object) with secrets replaced."""
        pattern = self._pattern
        if pattern is None or isinstance(value, _SAFE_TYPES):
            return value
        if isinstance(value, str):
            return pattern.sub(REDACTED, value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if isinstance(value, BaseException):
            return pattern.sub(REDACTED, f"{type(value).__name__}: {value}")
        shown = repr(value)  # what a renderer would print; keep the object when it is clean
        return pattern.sub(REDACTED, shown) if pattern.search(shown) else value

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        if self._pattern is None:
            return event_dict
        return {key: self.value(val) for key, val in event_dict.items()}


REDACTOR: Final = SecretRedactor()


def add_secrets(secrets: Iterable[str]) -> None:
    """Protect more secret values from now on, in every logger already created."""
    REDACTOR.add(secrets)


def secrets_from_env(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """``NEWSTRADER_*_SECRET`` and the web and Telegram tokens: protected before any config loads."""
    env = os.environ if environ is None else environ
    return [value for key, value in env.items() if SECRET_ENV_PATTERN.match(key.upper()) and value]


def _redact_rendered(logger: WrappedLogger, method_name: str, rendered: Any) -> str:
    text = rendered.decode() if isinstance(rendered, bytes) else rendered
    return REDACTOR.text(text)


# ---------------------------------------------------------------- stdlib LogRecord factory

_factory_lock = threading.Lock()
_factory_installed = False


def _install_record_factory() -> None:
    """Redact every stdlib record as it is created, whichever handler later prints it."""
    global _factory_installed
    with _factory_lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()
        formatter = logging.Formatter()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if isinstance(record.msg, dict):  # a structlog event, already redacted in its chain
                if "exception" in record.msg:
                    # `log.exception()` re-attaches the raw exc_info; the event has the clean text.
                    record.exc_info, record.exc_text = None, None
                return record
            if not REDACTOR.active:
                return record
            try:
                message = record.getMessage()
            except Exception:  # a broken format string: let logging report it as usual
                return record
            clean = REDACTOR.text(message)
            if clean != message:
                record.msg, record.args = clean, ()
            if record.exc_info and not record.exc_text:
                # Handlers reuse exc_text instead of formatting the exception again.
                record.exc_text = REDACTOR.text(formatter.formatException(record.exc_info))
            if record.stack_info:
                record.stack_info = REDACTOR.text(record.stack_info)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


# ---------------------------------------------------------------- configuration


class _NewstraderHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler we own, so reconfiguring replaces it instead of stacking another."""


_current: dict[str, Any] = {"json": False, "level": "info"}


def configure_logging(
    json: bool | None = None, level: str | None = None, secrets: Iterable[str] = ()
) -> None:
    """Route structlog and stdlib logging to stderr, redacting `secrets` and env secrets everywhere.

    Secrets accumulate: reconfiguring never stops protecting a value protected before. `json` and
    `level` left out keep what the last call chose (at first: console, info), so a verb that only
    adds secrets does not undo the CLI's ``--log-level`` / ``--log-json``."""
    json = _current["json"] if json is None else json
    level = _current["level"] if level is None else level
    REDACTOR.add([*secrets, *secrets_from_env()])
    _install_record_factory()

    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}; use debug, info, warning or error")
    _current.update(json=json, level=level)

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            # Redact before the event becomes a stdlib record: any other handler on the root
            # logger (a file handler, pytest's capture) sees only the clean event and traceback.
            structlog.processors.format_exc_info,
            REDACTOR,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    stream = sys.stderr
    renderer: Any
    if json:
        renderer = structlog.processors.JSONRenderer(default=str)
    else:
        colours = stream.isatty() and "NO_COLOR" not in os.environ
        renderer = structlog.dev.ConsoleRenderer(
            colors=colours, exception_formatter=structlog.dev.plain_traceback
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # exceptions become text, then get redacted
            REDACTOR,
            renderer,
            _redact_rendered,
        ],
    )
    handler = _NewstraderHandler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _NewstraderHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    for noisy in ("httpx", "httpcore", "hpack", "websockets", "asyncio", "aiosqlite", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))
    logging.captureWarnings(True)

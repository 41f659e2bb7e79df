"""Secret redaction: a secret in env, in a config, or in an exception never reaches any log output."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
import uvicorn.config

from newstrader.config import load_settings
from newstrader.logging_setup import REDACTED, configure_logging

ENV_KEY = "0x" + "5a7e" * 16
WEB_TOKEN = "web-token-Qx81Zr"
FILE_KEY = "c0ffee" * 10 + "abcd"


@dataclass
class Holder:
    """Something whose repr carries a secret, as a careless dataclass would."""

    key: str


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    structlog.reset_defaults()


def test_secrets_never_reach_captured_log_output(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    restore_logging: None,
) -> None:
    monkeypatch.setenv("NEWSTRADER_HL_SECRET", ENV_KEY)
    monkeypatch.setenv("NEWSTRADER_WEB_TOKEN", WEB_TOKEN)
    early = structlog.get_logger("newstrader.early")  # created before logging is configured
    configure_logging(json=True, level="debug")
    # uvicorn installs its own handlers (propagate=False), bypassing ours: it must still be clean.
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    log = structlog.get_logger("newstrader.test")

    log.info("order signed", key=ENV_KEY, body={"sig": [ENV_KEY.upper()]}, holder=Holder(ENV_KEY))
    early.info(f"bare hex {ENV_KEY[2:]} in the message")
    logging.getLogger("httpx").warning("POST %s", f"http://127.0.0.1/x?k={ENV_KEY}")
    logging.getLogger("uvicorn.error").info("token %s accepted", WEB_TOKEN)
    try:
        raise ValueError(f"signer mismatch for key {ENV_KEY}")
    except ValueError:
        log.exception("signing failed")
        logging.getLogger("uvicorn.error").exception("request failed")
        logging.getLogger("some.library").error("wrapped", exc_info=True)

    # A secret that arrives later through a config file is protected from then on.
    (tmp_path / "aster.key").write_text(FILE_KEY)
    (tmp_path / "c.toml").write_text(
        '[[venues]]\nname = "aster"\nkind = "aster"\nsecret_file = "aster.key"\n'
        'account = "0x' + "34" * 20 + '"\n'
    )
    load_settings(tmp_path / "c.toml")
    log.warning("loaded", raw=FILE_KEY)

    captured = capsys.readouterr()
    output = captured.out + captured.err
    # Other handlers on the root logger (here pytest's own capture) see only clean records too.
    lowered = (output + caplog.text).lower()
    for secret in (ENV_KEY, ENV_KEY[2:], WEB_TOKEN, FILE_KEY):
        assert secret.lower() not in lowered, f"{secret[:6]}… leaked"
    assert "order signed" in caplog.text
    # The events themselves were logged (the test is not passing on silence).
    for event in ("order signed", "bare hex", "POST http", "accepted", "signing failed", "request failed"):
        assert event in output
    assert "signer mismatch for key ***" in output  # exception text, redacted
    assert output.count(REDACTED) >= 10

    ours = [line for line in captured.err.splitlines() if line.startswith("{")]
    events = [json.loads(line)["event"] for line in ours]  # JSON mode: one object per line
    assert "order signed" in events
    assert "loaded" in events


def test_console_output_is_plain_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging(json=False, level="info", secrets=["console-secret-1"])
    structlog.get_logger("newstrader.test").info("hello", venue="hl", coin="ETH", note="console-secret-1")
    structlog.get_logger("newstrader.test").debug("below the level")
    err = capsys.readouterr().err
    assert "hello" in err
    assert "venue=hl" in err
    assert "\x1b[" not in err  # no colour codes in a pipe
    assert "console-secret-1" not in err
    assert "below the level" not in err


def test_reconfiguring_never_forgets_a_secret(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging(json=True, level="info", secrets=["first-secret-abc"])
    configure_logging(json=True, level="info")  # e.g. a verb reconfiguring without it
    structlog.get_logger("x").info("value first-secret-abc")
    err = capsys.readouterr().err
    assert "first-secret-abc" not in err
    assert json.loads(err.strip().splitlines()[-1])["event"] == f"value {REDACTED}"


def test_bad_level_is_refused(restore_logging: None) -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(level="loud")

"""The config loader as an operator meets it: a file on disk and `NEWSTRADER_*` variables.

`tests/foundation/test_config.py` fuzzes values inside a well-formed mapping; here the file
itself is junk (bytes, broken TOML, a mangled example) and the environment carries junk
overrides. Whatever arrives, `load_settings` answers with the settings or one `ConfigError`
naming a key, never another exception (which the CLI would show as a traceback).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newstrader.config import EXAMPLE_CONFIG, ConfigError, Settings, load_settings

SECTIONS = ["engine", "sizing", "exits", "news", "web", "journal"]
KEYS = [
    "mode",
    "max_signal_age_s",
    "notional_usd",
    "leverage",
    "take_profit_pct",
    "host",
    "port",
    "url",
    "token",
]


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    """Set env variables for one example (monkeypatch is function-scoped; examples are not)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _load(content: bytes) -> Settings | ConfigError:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "newstrader.toml"
        path.write_bytes(content)
        try:
            return load_settings(path)
        except ConfigError as exc:
            assert exc.key and exc.problem, exc
            assert "\n" not in str(exc)  # one line for the CLI
            return exc


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=300))
def test_any_bytes_are_settings_or_one_named_error(content: bytes) -> None:
    _load(content)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=len(EXAMPLE_CONFIG)),
    insert=st.text(max_size=30),
    drop=st.integers(min_value=0, max_value=40),
)
def test_a_mangled_example_is_settings_or_one_named_error(cut: int, insert: str, drop: int) -> None:
    """The file an operator edits by hand: the example with text dropped and typed in anywhere."""
    mangled = EXAMPLE_CONFIG[:cut] + insert + EXAMPLE_CONFIG[cut + drop :]
    _load(mangled.encode("utf-8", errors="surrogatepass"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    section=st.sampled_from(SECTIONS),
    key=st.sampled_from(KEYS) | st.from_regex(r"[A-Z_]{1,12}", fullmatch=True),
    value=st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20),
)
def test_junk_env_overrides_are_settings_or_one_named_error(section: str, key: str, value: str) -> None:
    name = f"NEWSTRADER_{section.upper()}__{key.upper()}"
    with _env({name: value}):
        result = _load(EXAMPLE_CONFIG.encode())
    if isinstance(result, ConfigError):
        assert result.key.split(".")[0].split("[")[0] in {section, "venues"} or section in result.key, result

"""Config loading: every bad value is one ConfigError naming its key; secrets never come from the TOML."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newstrader.config import (
    EXAMPLE_CONFIG,
    ConfigError,
    Settings,
    load_settings,
    require_live,
    secret_env_name,
    settings_from_mapping,
    write_example,
)

KEY = "0x" + "1f" * 32
OTHER_KEY = "ab" * 32


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    return subprocess.run(
        [sys.executable, "-m", "newstrader.cli", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(autouse=True)
def _no_newstrader_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("NEWSTRADER_"):
            monkeypatch.delenv(key)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newstrader.toml"
    path.write_text(text)
    return path


def _error(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data)
    return caught.value


# ---------------------------------------------------------------- the CLI's one-line errors


def test_bad_decimal_through_the_real_cli_is_one_line_exit_2(tmp_path: Path) -> None:
    _write(tmp_path, '[sizing]\nnotional_usd = "abc"\n')
    done = _cli("check", "--config", "newstrader.toml", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == ["config error: sizing.notional_usd: Input should be a valid decimal"]
    assert "Traceback" not in done.stdout + done.stderr


def test_missing_file_and_broken_toml_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "absent.toml")
    assert caught.value.key == str(tmp_path / "absent.toml")
    assert caught.value.problem == "no such file (newstrader init writes an example)"
    path = _write(tmp_path, "[sizing\nnotional_usd = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == str(path)
    assert caught.value.problem.startswith("not valid TOML")
    assert "\n" not in str(caught.value)


def test_init_example_loads_with_sim_venues(tmp_path: Path) -> None:
    # The `init` verb itself runs in test_check.py (init, then check against the simulator).
    path = tmp_path / "newstrader.toml"
    write_example(path)
    settings = load_settings(path)
    assert [(v.name, v.kind, v.network) for v in settings.venues] == [
        ("hyperliquid", "hyperliquid", "sim"),
        ("aster", "aster", "sim"),
    ]
    assert settings.venues[0].base_url == "http://127.0.0.1:8900/hyperliquid"
    assert settings.venues[1].base_url == "http://127.0.0.1:8900/aster"


def test_example_config_documents_the_defaults() -> None:
    from_example = settings_from_mapping(tomllib.loads(EXAMPLE_CONFIG))
    defaults = Settings()
    assert from_example.model_dump(exclude={"venues", "journal"}) == defaults.model_dump(
        exclude={"venues", "journal"}
    )
    assert from_example.journal.url == defaults.journal.url == "sqlite:///newstrader.db"


# ---------------------------------------------------------------- keys and values


def test_unknown_keys_are_named() -> None:
    assert str(_error({"sizing": {"notional": 5}})) == "sizing.notional: unknown key"
    assert str(_error({"sizng": {}})) == "sizng: unknown key"
    bad_venue = {"venues": [{"name": "hl", "kind": "hyperliquid", "acount": "0x"}]}
    assert str(_error(bad_venue)) == "venues[0].acount: unknown key"


def test_values_are_checked_with_the_key_named() -> None:
    assert _error({"engine": {"mode": "yolo"}}).key == "engine.mode"
    assert _error({"sizing": {"leverage": 0}}).key == "sizing.leverage"
    assert _error({"sizing": {"notional_usd": "NaN"}}).key == "sizing.notional_usd"
    assert _error({"sizing": {"per_coin": {"BTC": {"leverage": "x"}}}}).key == "sizing.per_coin.BTC.leverage"
    assert _error({"venues": [{"name": "a", "kind": "binance"}]}).key == "venues[0].kind"
    assert _error({"venues": [{"name": "a", "kind": "aster", "account": "0x12"}]}).key == "venues[0].account"
    dup = {"venues": [{"name": "a", "kind": "aster"}, {"name": "A", "kind": "hyperliquid"}]}
    assert _error(dup).key == "venues[1].name"
    assert _error({"news": {"rss": [{"interval_s": 5}]}}).key == "news.rss[0].url"
    assert _error({"web": {"port": 70000}}).key == "web.port"
    assert _error({"journal": {"url": "not a url"}}).key == "journal.url"


def test_decimals_stay_exact() -> None:
    settings = settings_from_mapping(
        {"sizing": {"notional_usd": 0.1, "per_coin": {"eth": {"notional_usd": "12.345"}}}}
    )
    assert settings.sizing.notional_usd == Decimal("0.1")
    assert settings.sizing.per_coin["ETH"].notional_usd == Decimal("12.345")


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "[sizing]\nnotional_usd = 100\nleverage = 2\n[engine]\nmode = 'target'\n")
    monkeypatch.setenv("NEWSTRADER_SIZING__NOTIONAL_USD", "55.5")
    monkeypatch.setenv("NEWSTRADER_ENGINE__MODE", "close_then_open")
    monkeypatch.setenv("NEWSTRADER_WEB_TOKEN", "tok-from-env-0123456789")
    settings = load_settings(path)
    assert settings.sizing.notional_usd == Decimal("55.5")
    assert settings.sizing.leverage == 2  # the file's other keys survive the merge
    assert settings.engine.mode == "close_then_open"
    assert settings.web.token is not None
    assert settings.web.token.get_secret_value() == "tok-from-env-0123456789"
    monkeypatch.setenv("NEWSTRADER_SIZING__NOTIONAL_USD", "lots")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "sizing.notional_usd"


# ---------------------------------------------------------------- secrets


def test_secret_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[[venues]]\nname = "my-hl"\nkind = "hyperliquid"\nsecret = "{KEY}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "venues[0].secret"
    assert "NEWSTRADER_MY_HL_SECRET" in caught.value.problem
    assert KEY not in str(caught.value)


def test_secret_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert secret_env_name("my-hl.1") == "NEWSTRADER_MY_HL_1_SECRET"
    monkeypatch.setenv("NEWSTRADER_MY_HL_SECRET", f"  {KEY}\n")
    path = _write(tmp_path, '[[venues]]\nname = "my-hl"\nkind = "hyperliquid"\n')
    settings = load_settings(path)
    secret = settings.venues[0].secret
    assert secret is not None
    assert secret.get_secret_value() == KEY
    assert KEY not in repr(settings)  # SecretStr hides it from reprs and dumps
    assert KEY in settings.secrets()


def test_secret_from_file_relative_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "aster.key").write_text(OTHER_KEY + "\n")
    path = _write(
        tmp_path,
        '[[venues]]\nname = "aster"\nkind = "aster"\nsecret_file = "keys/aster.key"\n'
        'account = "0x' + "12" * 20 + '"\n',
    )
    monkeypatch.chdir("/")  # relative to the file, not to where the command runs
    settings = load_settings(path)
    secret = settings.venues[0].secret
    assert secret is not None
    assert secret.get_secret_value() == OTHER_KEY
    monkeypatch.setenv("NEWSTRADER_ASTER_SECRET", KEY)  # env wins over the file
    secret = load_settings(path).venues[0].secret
    assert secret is not None
    assert secret.get_secret_value() == KEY


def test_secret_file_problems_are_named(tmp_path: Path) -> None:
    (tmp_path / "empty.key").write_text("\n")
    for target, expected in [("missing.key", "no such file"), ("empty.key", "file is empty")]:
        path = _write(tmp_path, f'[[venues]]\nname = "a"\nkind = "aster"\nsecret_file = "{target}"\n')
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert caught.value.key == "venues[0].secret_file"
        assert expected in caught.value.problem


def test_malformed_private_key_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSTRADER_HL_SECRET", "not-a-key-but-sensitive")
    error = _error({"venues": [{"name": "hl", "kind": "hyperliquid"}]})
    assert error.key == "venues[0].secret"
    assert "NEWSTRADER_HL_SECRET" in error.problem
    assert "not-a-key-but-sensitive" not in str(error)
    # Aster's legacy HMAC secret is not a private key, but it needs its API key.
    monkeypatch.setenv("NEWSTRADER_AS_SECRET", "hmac-secret-value")
    assert _error({"venues": [{"name": "as", "kind": "aster", "auth": "hmac"}]}).key == "venues[0].api_key"
    ok = settings_from_mapping(
        {"venues": [{"name": "as", "kind": "aster", "auth": "hmac", "api_key": "k123"}]}
    )
    assert set(ok.secrets()) == {"hmac-secret-value", "k123"}


def test_mainnet_needs_live() -> None:
    settings = settings_from_mapping(
        {
            "venues": [
                {"name": "sim-hl", "kind": "hyperliquid"},
                {"name": "real", "kind": "aster", "network": "mainnet"},
            ]
        }
    )
    assert settings.venues[1].base_url == "https://fapi.asterdex.com"
    with pytest.raises(ConfigError) as caught:
        require_live(settings, live=False)
    assert caught.value.key == "venues[1].network"
    assert "--live" in caught.value.problem
    require_live(settings, live=True)
    require_live(
        settings_from_mapping({"venues": [{"name": "t", "kind": "aster", "network": "testnet"}]}), False
    )


def test_write_example_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "x" / "c.toml"
    write_example(path)
    path.write_text("# mine\n")
    with pytest.raises(FileExistsError):
        write_example(path)
    assert path.read_text() == "# mine\n"  # nothing lost
    write_example(path, force=True)
    load_settings(path)


# ---------------------------------------------------------------- property: junk never escapes as a traceback

_example = tomllib.loads(EXAMPLE_CONFIG)
_SCALAR_KEYS = [
    (section, key)
    for section, table in _example.items()
    if isinstance(table, dict)
    for key in table
    if not isinstance(table[key], dict)
]
_VENUE_KEYS = ["name", "kind", "network", "url", "account", "signer", "api_key", "auth", "secret_file"]

toml_scalars = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    where=st.sampled_from(_SCALAR_KEYS),
    value=toml_values,
    venue_key=st.sampled_from(_VENUE_KEYS),
    venue_value=toml_values,
    junk_section=st.one_of(st.none(), st.sampled_from(list(_example)), st.text(min_size=1, max_size=8)),
    junk_section_value=toml_values,
)
def test_junk_values_give_a_config_error_naming_a_key(
    where: tuple[str, str],
    value: Any,
    venue_key: str,
    venue_value: Any,
    junk_section: str | None,
    junk_section_value: Any,
) -> None:
    data: dict[str, Any] = tomllib.loads(EXAMPLE_CONFIG)
    section, key = where
    data[section][key] = value
    data["venues"][1][venue_key] = venue_value
    if junk_section is not None:
        data[junk_section] = junk_section_value
    try:
        settings_from_mapping(data)
    except ConfigError as exc:
        assert exc.key
        quoted = f"[{json.dumps(junk_section)}]"  # an odd top-level name is quoted, one line
        assert exc.key.split(".")[0].split("[")[0] in {*_example, "venues", junk_section} or (
            exc.key.startswith(quoted)
        )
        assert "\n" not in str(exc)
        assert exc.problem
    # Any other exception fails the test: that would be a traceback for the user.


def test_infinite_and_nan_floats_are_refused_everywhere() -> None:
    for section, key in _SCALAR_KEYS:
        if isinstance(_example[section][key], float | int) and not isinstance(_example[section][key], bool):
            for bad in (math.inf, math.nan):
                data = tomllib.loads(EXAMPLE_CONFIG)
                data[section][key] = bad
                with pytest.raises(ConfigError) as caught:
                    settings_from_mapping(data)
                assert caught.value.key == f"{section}.{key}"

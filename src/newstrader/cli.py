"""The `newstrader` command line. Each verb is a thin shell over a module that does the work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="newstrader",
    help="Trade crypto perps from news. The exchange's position is the truth.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Config TOML file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _not_built(verb: str) -> None:
    typer.echo(f"newstrader {verb}: not built yet", err=True)
    raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Simulator + bot + dashboard + a sample news replay, in one process."""
    _not_built("demo")


@app.command()
def run(
    config: ConfigOpt = Path("newstrader.toml"),
    live: Annotated[bool, typer.Option("--live", help="Allow mainnet venues.")] = False,
) -> None:
    """Run the bot with a config file."""
    _not_built("run")


@app.command()
def sim(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8900,
    seed: Annotated[int, typer.Option(help="Seed for prices and ids.")] = 1,
) -> None:
    """Run the venue simulator (Hyperliquid + Aster APIs)."""
    _not_built("sim")


@app.command()
def init(path: Annotated[Path, typer.Argument()] = Path("newstrader.toml")) -> None:
    """Write a commented example config."""
    _not_built("init")


@app.command()
def check(config: ConfigOpt = Path("newstrader.toml")) -> None:
    """Check config, connectivity, credentials and clock skew."""
    _not_built("check")


@app.command()
def positions(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """Exchange positions next to the cache, per venue."""
    _not_built("positions")


@app.command()
def reconcile(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """Read every venue and record drift, without trading."""
    _not_built("reconcile")


@app.command()
def close(
    coin: str,
    venue: Annotated[str | None, typer.Option(help="Only this venue.")] = None,
    config: ConfigOpt = Path("newstrader.toml"),
) -> None:
    """Close one coin's position."""
    _not_built("close")


@app.command()
def flatten(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    config: ConfigOpt = Path("newstrader.toml"),
) -> None:
    """Close every position on every venue and cancel every trigger."""
    _not_built("flatten")


@app.command()
def pause(config: ConfigOpt = Path("newstrader.toml")) -> None:
    """Stop opening positions."""
    _not_built("pause")


@app.command()
def resume(config: ConfigOpt = Path("newstrader.toml")) -> None:
    """Resume trading."""
    _not_built("resume")


@app.command()
def signal(
    text: str,
    execute: Annotated[bool, typer.Option("--execute", help="Act on it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Parse a headline and show the decision."""
    _not_built("signal")


@app.command()
def replay(
    file: Path,
    speed: Annotated[float, typer.Option(help="Time multiplier.")] = 1.0,
    config: ConfigOpt = Path("newstrader.toml"),
) -> None:
    """Replay a JSONL news file."""
    _not_built("replay")


@app.command()
def history(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """Recent news, signals and outcomes."""
    _not_built("history")


@app.command()
def stats(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """Realized PnL, fees, win rate and latency from exchange fills."""
    _not_built("stats")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

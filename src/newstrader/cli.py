"""The `newstrader` command line. Each verb is a thin shell over a module that does the work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="newstrader",
    help="Trade crypto perps from news. The exchange's position is the truth.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Config TOML file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
EXECUTE_WAIT_S = 30.0  # `signal --execute` waits this long for the venues' outcomes (the API's limit)


@app.callback()
def _global_options(
    log_json: Annotated[
        bool, typer.Option("--log-json", envvar="NEWSTRADER_LOG_JSON", help="Log JSON lines to stderr.")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="NEWSTRADER_LOG_LEVEL", help="debug, info, warning, error.")
    ] = "info",
) -> None:
    """Logging for every verb: stderr, secrets redacted (see logging_setup)."""
    from newstrader.logging_setup import configure_logging

    try:
        configure_logging(json=log_json, level=log_level)
    except ValueError as exc:
        typer.echo(f"config error: --log-level: {exc}", err=True)
        raise typer.Exit(2) from None


def _not_built(verb: str) -> None:
    typer.echo(f"newstrader {verb}: not built yet", err=True)
    raise typer.Exit(1)


@app.command()
def demo(
    fast: Annotated[bool, typer.Option("--fast", help="No pauses for the viewer (tests).")] = False,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to stay up after the script; default: until Ctrl-C.")
    ] = None,
    port: Annotated[int, typer.Option(help="Dashboard port (0 = any free one).")] = 8080,
    sim_port: Annotated[int, typer.Option(help="Simulator port (0 = any free one).")] = 8900,
    headlines: Annotated[
        int | None, typer.Option(help="Replay only the first N sample headlines (the scenes always run).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulator + bot + dashboard + a sample news replay, in one process."""
    import asyncio
    import json
    import os

    from newstrader.demo import run_demo
    from newstrader.logging_setup import configure_logging

    if not os.environ.get("NEWSTRADER_LOG_LEVEL"):
        configure_logging(level="warning")  # the script's lines stay readable; drift warnings still show
    say = (lambda _line: None) if as_json else typer.echo
    try:
        report = asyncio.run(
            run_demo(
                fast=fast,
                duration=duration,
                web_port=port,
                sim_port=sim_port,
                headlines=headlines,
                say=say,
            )
        )
    except OSError as exc:  # typically a port already in use
        typer.echo(f"demo: {exc} (choose free ports with --port / --sim-port)", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def run(
    config: ConfigOpt = Path("newstrader.toml"),
    live: Annotated[bool, typer.Option("--live", help="Allow mainnet venues.")] = False,
) -> None:
    """Run the bot with a config file."""
    from newstrader.bot import run_bot

    raise typer.Exit(run_bot(config, live))


@app.command()
def ingest(config: ConfigOpt = Path("newstrader.toml")) -> None:
    """Run the news sources and publish every item to the NATS JetStream stream (`[bus] url`)."""
    from newstrader.cluster.ingest import run_ingest

    raise typer.Exit(run_ingest(config))


@app.command()
def cluster(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """The bots sharing this PostgreSQL journal: which instance owns each account, which stand by."""
    from newstrader.cluster.view import run_cluster

    raise typer.Exit(run_cluster(config, as_json))


@app.command()
def sim(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8900,
    seed: Annotated[int, typer.Option(help="Seed for prices and ids.")] = 1,
    no_rate_limits: Annotated[
        bool, typer.Option("--no-rate-limits", help="Do not enforce the venues' rate limits.")
    ] = False,
    markets: Annotated[
        Path | None, typer.Option(help="JSON list of {coin, sz_decimals, max_leverage, price}.")
    ] = None,
    walk_interval: Annotated[
        float, typer.Option(help="Seconds between random-walk steps of the marks (0 = still).")
    ] = 0.0,
    network: Annotated[
        str,
        typer.Option(help="testnet | mainnet: accept only that network's Aster chain id and HL source."),
    ] = "testnet",
) -> None:
    """Run the venue simulator (Hyperliquid + Aster APIs)."""
    from newstrader.sim.__main__ import serve

    serve(
        host=host,
        port=port,
        seed=seed,
        rate_limits=not no_rate_limits,
        markets_file=markets,
        walk_interval_s=walk_interval,
        network=network,
    )


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("newstrader.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    sim: Annotated[
        bool, typer.Option("--sim", help="Ready for the simulator: fresh keys in keys/ (0600), self-funding.")
    ] = False,
    sim_url: Annotated[
        str, typer.Option(help="The simulator's address (with --sim).")
    ] = "http://127.0.0.1:8900",
) -> None:
    """Write a commented example config (with --sim: one that trades on `newstrader sim` as is)."""
    from newstrader.config import write_example, write_sim_setup

    try:
        if sim:
            key_files = write_sim_setup(path, sim_url=sim_url, force=force)
        else:
            write_example(path, force=force)
    except (FileExistsError, OSError) as exc:
        typer.echo(f"init: {exc}", err=True)
        raise typer.Exit(1) from None
    if sim:
        typer.echo(f"wrote {path} and {', '.join(str(k) for k in key_files)} (mode 0600)")
        typer.echo(f"next: `newstrader sim` in another terminal, then `newstrader run -c {path}`")
        typer.echo("      (run funds the simulator accounts with 10000 USD the first time)")
        return
    typer.echo(f"wrote {path}: sim venues need `newstrader sim` running; then `newstrader check -c {path}`")


@app.command()
def check(
    config: ConfigOpt = Path("newstrader.toml"),
    as_json: JsonOpt = False,
    trade_test: Annotated[
        bool,
        typer.Option(
            "--trade-test",
            help="Also place and cancel one post-only order far from the market on each venue.",
        ),
    ] = False,
) -> None:
    """Check config, connectivity, credentials and clock skew (exit 0 ok, 1 a venue fails, 2 bad config)."""
    import asyncio
    import json

    from newstrader.config import ConfigError, load_settings
    from newstrader.preflight import check_all, describe
    from newstrader.sim.funding import fund_sim_accounts

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"config error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in asyncio.run(fund_sim_accounts(settings)):
        typer.echo(line, err=True)
    results = asyncio.run(check_all(settings, trade_test=trade_test))
    if as_json:
        typer.echo(json.dumps({"config": str(config), "venues": [r.as_dict() for r in results]}))
    else:
        typer.echo(
            f"config ok: {config} ({len(settings.venues)} venue{'s' if len(settings.venues) != 1 else ''})"
        )
        for result in results:
            typer.echo(describe(result))
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@app.command()
def positions(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """Exchange positions next to the cache, per venue (asks the running bot)."""
    from newstrader import remote

    data = _remote_call(config, "GET", "/api/positions")
    if as_json:
        remote.print_json(data)
    else:
        remote.render_positions(_console(), data)


@app.command()
def reconcile(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """Read every venue and record drift, without trading (asks the running bot)."""
    from newstrader import remote

    data = _remote_call(config, "POST", "/api/control/reconcile")
    if as_json:
        remote.print_json(data)
    else:
        found = data.get("detail") if isinstance(data.get("detail"), list) else []
        remote.render_events(_console(), found, "Drift found now")


@app.command()
def close(
    coin: str,
    venue: Annotated[str | None, typer.Option(help="Only this venue.")] = None,
    config: ConfigOpt = Path("newstrader.toml"),
    as_json: JsonOpt = False,
) -> None:
    """Close one coin's position (asks the running bot)."""
    _remote_control(config, "close", as_json, {"coin": coin, "venue": venue})


@app.command()
def flatten(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    config: ConfigOpt = Path("newstrader.toml"),
    as_json: JsonOpt = False,
) -> None:
    """Close every position on every venue and cancel every trigger."""
    if not yes and not typer.confirm("Close every position on every venue?", default=False):
        typer.echo("flatten: not confirmed, nothing done", err=True)
        raise typer.Exit(1)
    _remote_control(config, "flatten", as_json)


@app.command()
def pause(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """Stop opening positions."""
    _remote_control(config, "pause", as_json)


@app.command()
def resume(config: ConfigOpt = Path("newstrader.toml"), as_json: JsonOpt = False) -> None:
    """Resume trading."""
    _remote_control(config, "resume", as_json)


@app.command()
def signal(
    text: str,
    execute: Annotated[
        bool, typer.Option("--execute", help="Send it to the running bot (POST /api/news) to act on.")
    ] = False,
    as_json: JsonOpt = False,
    rules: Annotated[
        Path | None, typer.Option("--rules", help="A rules TOML merged over the defaults.")
    ] = None,
    config: ConfigOpt = Path("newstrader.toml"),
) -> None:
    """Parse a headline and show the decision (no config needed; default rules and markets)."""
    from newstrader.news.commands import signal_command

    if not execute:
        signal_command(text, as_json=as_json, rules=rules)
        return
    # --execute: the running bot parses, filters and acts; print what it decided, then (the
    # webhook answers before the orders are done) what each venue did, once it is known.
    if not as_json:
        signal_command(text, as_json=False, rules=rules)
    reply = _remote_call(
        config, "POST", f"/api/news?wait={EXECUTE_WAIT_S:g}", {"title": text, "source": "cli"}
    )
    if as_json:
        typer.echo(json.dumps(reply))
        return
    typer.echo(f"bot: {reply.get('reason')}")
    for outcome in reply.get("outcomes", []):
        detail = f" ({outcome['reason']})" if outcome.get("reason") else ""
        typer.echo(f"  {outcome['venue']}: {outcome['status']}{detail}")
    if not reply.get("done"):
        typer.echo(f"still executing after {EXECUTE_WAIT_S:g}s; see `newstrader history` for the outcomes")


@app.command()
def replay(
    file: Path,
    speed: Annotated[float, typer.Option(help="Time multiplier (0 = as fast as possible).")] = 1.0,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Run the items through a bot with this config.")
    ] = None,
    as_json: JsonOpt = False,
    rules: Annotated[
        Path | None, typer.Option("--rules", help="A rules TOML merged over the defaults.")
    ] = None,
    live: Annotated[bool, typer.Option("--live", help="Allow mainnet venues (with --config).")] = False,
) -> None:
    """Replay a JSONL news file with its own timing: through the parser, or with --config a bot."""
    from newstrader.news.commands import replay_command

    raise typer.Exit(
        replay_command(file, speed=speed, config=config, as_json=as_json, rules=rules, live=live)
    )


@app.command()
def history(
    config: ConfigOpt = Path("newstrader.toml"),
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(help="Rows of each kind.")] = 20,
) -> None:
    """Recent news, signals and outcomes (asks the running bot)."""
    from newstrader import remote

    news = _remote_call(config, "GET", f"/api/news?limit={limit}")["news"]
    signals = _remote_call(config, "GET", f"/api/signals?limit={limit}")["signals"]
    if as_json:
        remote.print_json({"news": news, "signals": signals})
    else:
        remote.render_history(_console(), news, signals)


@app.command()
def stats(
    config: ConfigOpt = Path("newstrader.toml"),
    as_json: JsonOpt = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write the per venue/coin/source table as CSV.")
    ] = None,
) -> None:
    """Realized PnL, fees, win rate and latency from exchange fills (asks the running bot)."""
    from newstrader import remote

    data = _remote_call(config, "GET", "/api/stats")
    if csv_path is not None:
        from newstrader.autotrade.stats import stats_csv

        csv_path.write_text(stats_csv(data.get("summary") or {}))
        typer.echo(f"wrote {csv_path}", err=True)
    if as_json:
        remote.print_json(data)
    else:
        remote.render_stats(_console(), data)


def _console() -> Any:
    import sys

    from rich.console import Console

    # Piped output (scripts, logs) gets full rows rather than 80 squeezed columns.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _remote_call(config: Path, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Ask the running bot (operator verbs); a failure is one clear line and exit 1."""
    from newstrader import remote

    try:
        with remote.BotClient(remote.resolve_endpoint(config)) as client:
            return client.call(method, path, body)
    except remote.RemoteError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _remote_control(config: Path, action: str, as_json: bool, body: dict[str, Any] | None = None) -> None:
    from newstrader import remote

    data = _remote_call(config, "POST", f"/api/control/{action}", body)
    if as_json:
        remote.print_json(data)
    else:
        remote.render_control(_console(), data)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

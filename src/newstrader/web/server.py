"""Serve an ASGI app with uvicorn inside an already running event loop.

Several servers (the bot's API, the demo's simulator) share one process and one loop, so
none of them may take over the process's signal handlers: the owner of the loop handles
Ctrl-C and calls `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from starlette.types import ASGIApp


class PortUnavailable(OSError):
    """The address could not be bound (taken, or not ours): the message names host and port."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot listen on {host}:{port}: {cause.strerror or cause}")
        self.host, self.port = host, port

    def __str__(self) -> str:
        return str(self.strerror)


def bind_loopback(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0 = any free one); `PortUnavailable` names the address when not."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortUnavailable(host, port, exc) from None
    return sock


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The loop's owner handles signals; see the module docstring.
        yield


class LoopbackServer:
    """One uvicorn server as a task of the current loop; `start()` returns once it listens.

    The app may be given now or to `start(app)`: binding first lets a caller learn the port
    before it builds the app that needs to know it.
    """

    def __init__(
        self,
        app: ASGIApp | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
    ) -> None:
        # Bind now, so the port is known (and ours) before the app that needs it is built.
        self._sock = bind_loopback(host, port)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self._log_level = log_level
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._app: ASGIApp | None = app
        self._background: list[asyncio.Task[Any]] = []
        self._closing: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(
        self,
        app: ASGIApp | None = None,
        timeout: float = 15.0,
        *,
        closing: asyncio.Event | None = None,
        on_serve: Sequence[Callable[[], Coroutine[Any, Any, Any]]] = (),
    ) -> None:
        """Serve the app; raises if the server does not come up within `timeout` seconds.

        `on_serve`: background work the app needs while it serves (e.g. the metrics feed);
        `closing` is set at `stop()` so open streams end."""
        if app is not None:
            self._app = app
        self._closing = closing
        if self._app is None:
            raise ValueError("LoopbackServer.start needs an app")
        config = uvicorn.Config(
            self._app,
            log_level=self._log_level,
            access_log=False,
            log_config=None,  # uvicorn's lines go through our handler: same format, redacted
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        # Background work the app asked for (e.g. the metrics feed), for as long as it serves.
        for hook in on_serve:
            self._background.append(asyncio.create_task(hook()))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises the start-up error
                raise RuntimeError(f"server on {self.url} stopped while starting")
            if loop.time() > deadline:
                raise TimeoutError(f"server on {self.url} did not start in {timeout}s")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Ask open streams to end, stop accepting, wait for the server task."""
        if self._closing is not None:
            self._closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        self._sock.close()

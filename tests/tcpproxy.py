"""A TCP proxy for fault injection between a server process and its database.

It runs on its own thread and event loop, so the test may block (``ServerProcess.start``,
synchronous HTTP) without stalling the traffic it forwards. Three states:

- open: bytes flow both ways;
- held (:meth:`hold`): connections stay up and new ones are accepted, but no byte moves in
  either direction until :meth:`release` (a network partition; or a very slow database);
- cut (:meth:`cut`): the listening socket is closed and every connection aborted, so the
  database looks down (connection refused) until :meth:`restore`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tests.process import free_port

__all__ = ["TcpProxy"]

T = TypeVar("T")


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.accepted = 0
        """Connections accepted so far (all time)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcpproxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- control, from the test's thread ----------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._run(self._start())
        return self

    def cut(self) -> None:
        """Refuse new connections and abort every open one."""
        self._run(self._cut())

    def restore(self) -> None:
        """Listen again on the same port (after :meth:`cut`)."""
        self._run(self._listen())

    def hold(self) -> None:
        """Stop moving bytes; connections stay open and new ones are accepted."""
        self._run(self._set_flowing(False))

    def release(self) -> None:
        """Move bytes again, including everything held back."""
        self._run(self._set_flowing(True))

    @property
    def open_connections(self) -> int:
        return self._run(self._count())

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._run(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    # -- the proxy's own loop -----------------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for downstream, upstream in list(self._links):
            downstream.transport.abort()
            if upstream is not None:
                upstream.transport.abort()
        self._links.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _count(self) -> int:
        return len(self._links)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A task of our own (not the one asyncio.start_server runs the callback in), so that
        # cancelling it on a cut is not reported as an error.
        self.accepted += 1
        task = asyncio.get_running_loop().create_task(self._link(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
        self._links.add(link)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.transport.abort()
                return
            self._links.discard(link)
            link = (writer, up_writer)
            self._links.add(link)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._links.discard(link)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

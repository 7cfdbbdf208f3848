"""The channel between the daemon and a fetch worker: pickled messages, each prefixed with its length, over one
Unix socket pair read with asyncio streams.

Both ends are this package's own code in processes of the same user, so pickle is safe here; what crosses are
plain tuples of the monitor's own dataclasses (``FeedConfig``, ``Article``, ``ProcessResult``). Writes never block
the event loop: a full socket buffer only makes ``send`` wait in ``drain``, so neither end can deadlock the other by
writing while the other writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
from typing import Any

__all__ = ["Channel", "open_channel"]

_HEADER = 4


class Channel:
    """One end of the socket pair. ``receive`` raises ``EOFError`` once the other end has gone."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._drain = asyncio.Lock()
        self._out: list[bytes] = []

    async def send(self, message: tuple[Any, ...]) -> None:
        """Queue ``message``; the frames queued in one turn of the event loop go out in one write (a cycle sends
        thousands at once), and ``send`` returns once the socket has taken them or has room for more."""
        if self._writer.is_closing():
            raise ConnectionResetError("the channel is closed")
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._out.append(len(data).to_bytes(_HEADER, "big"))
        self._out.append(data)
        if len(self._out) == 2:
            asyncio.get_running_loop().call_soon(self._flush)
        await asyncio.sleep(0)  # the flush runs first
        async with self._drain:
            await self._writer.drain()

    def _flush(self) -> None:
        out, self._out = self._out, []
        if not self._writer.is_closing():
            self._writer.write(b"".join(out))

    async def receive(self) -> tuple[Any, ...]:
        try:
            size = int.from_bytes(await self._reader.readexactly(_HEADER), "big")
            data = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError("the other end of the channel has gone") from exc
        message: tuple[Any, ...] = pickle.loads(data)
        return message

    def close(self) -> None:
        self._writer.close()

    async def aclose(self) -> None:
        """Close and wait until the socket is closed."""
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


async def open_channel(sock: socket.socket) -> Channel:
    """A ``Channel`` over ``sock`` (one end of ``socket.socketpair()``), on the running loop."""
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    return Channel(reader, writer)

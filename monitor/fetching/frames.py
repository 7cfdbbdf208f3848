"""The channel between the daemon and a fetch worker: messages (tuples) over one Unix socket pair read with asyncio
streams; those posted in one turn of the event loop travel as one pickled list prefixed with its length.

Both ends are this package's own code in processes of the same user, so pickle is safe here; what crosses are
plain tuples of the monitor's own dataclasses (``FeedConfig``, ``Article``, ``ProcessResult``). Writes never block
the event loop (a full socket buffer only makes ``send`` wait in ``drain``), so neither end can deadlock the other by
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
        self._out: list[tuple[Any, ...]] = []

    def post(self, message: tuple[Any, ...]) -> None:
        """Queue ``message``: the messages queued in one turn of the event loop go out together, as one pickled
        list in one write (a cycle sends thousands at once). Raises ``ConnectionResetError`` once closed."""
        if self._writer.is_closing():
            raise ConnectionResetError("the channel is closed")
        self._out.append(message)
        if len(self._out) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    async def send(self, message: tuple[Any, ...]) -> None:
        """``post``, then wait until the socket has room again (for large messages: articles)."""
        self.post(message)
        await asyncio.sleep(0)  # the flush runs first
        async with self._drain:
            await self._writer.drain()

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._writer.is_closing():
            return
        data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(len(data).to_bytes(_HEADER, "big") + data)

    async def receive(self) -> list[tuple[Any, ...]]:
        """The next batch of messages, in the order they were posted."""
        try:
            size = int.from_bytes(await self._reader.readexactly(_HEADER), "big")
            data = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError("the other end of the channel has gone") from exc
        messages: list[tuple[Any, ...]] = pickle.loads(data)
        return messages

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

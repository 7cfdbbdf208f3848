"""The fields ``monitor scan`` reads from a JSON Lines object, decoded by msgspec straight from the line.

A headline's line costs several times less to decode this way than through the standard library into a dict
(``benchmarks/README.md``), since only these fields become Python values. It answers only when every field it reads
is a string or missing (or ``null``); for any other line (a value of another type, a line the standard library
might read differently: ``NaN``, lone surrogates, malformed JSON, not an object) it answers ``None`` and the caller
reads the line with the standard library, which decides what it holds and which error it is.
"""

from __future__ import annotations

import msgspec

__all__ = ["Fields", "decode_fields"]


class Fields(msgspec.Struct):
    """The fields of ``parsing.files``'s objects (both spellings); a field that is not there is ``None``. msgspec
    keeps the last of a field given twice, as the standard library does."""

    id: str | None = None
    url: str | None = None
    link: str | None = None
    title: str | None = None
    headline: str | None = None
    summary: str | None = None
    short_description: str | None = None
    description: str | None = None
    content: str | None = None
    text: str | None = None
    body: str | None = None


_decode = msgspec.json.Decoder(Fields).decode


def decode_fields(line: str) -> Fields | None:
    """The line's fields, or ``None`` when msgspec does not read it as an object whose fields are strings."""
    try:
        return _decode(line)
    except msgspec.MsgspecError:
        return None

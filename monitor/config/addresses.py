"""E-mail addresses as the configuration accepts them: plain ``user@domain``, checked when the config is loaded."""

from __future__ import annotations

from collections.abc import Sequence
from email.headerregistry import Address

__all__ = ["bad_addresses"]


def bad_addresses(addresses: Sequence[str]) -> list[str]:
    """The entries of ``addresses`` that are not plain ``user@domain`` addresses (checked at start-up, so a typo
    is a config error rather than a dead letter per alert)."""
    bad = []
    for address in addresses:
        try:
            parsed = Address(addr_spec=address)
        except Exception:  # the parser raises several unrelated types (ValueError, IndexError, header defects)
            bad.append(address)
            continue
        if not parsed.username or not parsed.domain or parsed.addr_spec != address.strip():
            bad.append(address)
    return bad

"""Apprise for the long tail of services (Matrix, ntfy, Pushover, Signal gateways, SMS and e-mail services): one
plain-text notification per alert, through the outbox like every other sink.

Apprise makes its own HTTP requests (``requests``, blocking), so this sink keeps them on the outbox's terms:

- its own retries are off (``service_retry = 0`` on every target, whatever the URL says): the outbox retries,
  with its backoff, attempt count and dead letter;
- ``notify()`` runs in a worker thread, bounded by the sink's ``timeout_s`` (also each target's connect and read
  timeout); a timeout or a False result is a ``DeliveryError`` (retried, then dead-lettered), never a silent drop;
- a retry goes only to the targets that have not yet accepted the alert (remembered in memory, per alert);
- each target's host (the plugin's fixed API host, e.g. Pushover's, else the URL's host) is resolved and every
  address checked with the private-network guard when the sink is built and again before each send, unless
  ``allow_private_networks``; HTTP redirects are refused on every plugin that honours Apprise's ``redirect`` flag.

What Apprise's own requests can still do (docs/sinks.md): a name that resolves to a public address when checked and
to a private one a moment later (DNS rebinding) reaches the private one; a plugin that ignores the redirect flag
follows redirects; plugins that talk to more than one host are checked on their main one only.
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from monitor.core.errors import DeliveryError, PermanentDeliveryError
from monitor.delivery.routing import Route
from monitor.delivery.sinks.view import AlertView, clip
from monitor.network.guard import is_public_address

__all__ = ["AppriseSetupError", "AppriseSink", "apprise_text"]

_MAX_REMEMBERED = 1000

#: Host name -> its addresses; raises ``OSError`` when it does not resolve.
Resolver = Callable[[str], list[str]]


class AppriseSetupError(ValueError):
    """An Apprise URL that cannot be used; ``index`` is its place in ``urls``."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        super().__init__(reason)


def apprise_text(alert: dict[str, Any]) -> tuple[str, str]:
    """The title and plain-text body of an alert's notification."""
    view = AlertView.of(alert)
    title = clip(f"{view.label} · {view.title}", 250)
    lines = [view.type_label, *(f"{label}: {text}" for label, text in view.names)]
    if view.summary:
        lines.append(clip(view.summary, 1000))
    lines.extend(f"- {clip(link.title, 200)} ({link.source}) {link.url or ''}".rstrip() for link in view.links[:5])
    if view.changes:
        lines.append(clip("What changed: " + "; ".join(view.changes), 500))
    lines.append(f"Alert {view.id}")
    return title, "\n".join(lines)


def _target_host(plugin: Any) -> str | None:
    """Where a plugin's requests go: its fixed API URL's host, else the host of its URL, else its cloud default."""
    fixed = getattr(type(plugin), "notify_url", None)
    if isinstance(fixed, str) and "{" not in fixed and urlsplit(fixed).hostname:
        return urlsplit(fixed).hostname
    host = getattr(plugin, "host", None)
    if isinstance(host, str) and host:
        return host
    cloud = getattr(type(plugin), "cloud_notify_url", None)
    return urlsplit(cloud).hostname if isinstance(cloud, str) else None


def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as Apprise's requests will use it)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def check_host(host: str | None, allow_private: bool, resolver: Resolver = resolve) -> str | None:
    """Why ``host`` may not be notified (it does not resolve, or to a non-public address), or None."""
    if allow_private:
        return None
    if not host:
        return "no host to check"
    try:
        addresses = resolver(host)
    except (OSError, UnicodeError):
        return f"{host} does not resolve"
    blocked = [a for a in addresses if not is_public_address(a)]
    return f"{host} resolves to non-public {', '.join(blocked)}" if blocked else None


def _plugins(urls: Sequence[str]) -> list[Any]:
    """One Apprise plugin per URL (None where Apprise cannot use it), with redirects and retries off."""
    # Apprise loads its plugins on first use, and some import modules Python deprecates (imghdr): not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise  # only when an apprise sink is configured: it is an optional dependency

        asset = apprise.AppriseAsset()
        asset.http_redirects = False
        asset.default_service_retry = 0
        return [apprise.Apprise.instantiate(url, asset=asset) for url in urls]


class AppriseSink:
    """Notifies every Apprise URL in ``urls`` of each alert."""

    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        *,
        timeout_s: float = 10.0,
        allow_private_networks: bool = False,
        min_severity: int | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self.route: Route | None = None
        self._timeout = timeout_s
        self._allow_private = allow_private_networks
        self._resolver = resolver
        self._targets: list[Any] = []
        self._hosts: list[str | None] = []
        for index, plugin in enumerate(_plugins(urls)):
            if plugin is None:
                raise AppriseSetupError(index, "not an Apprise URL Apprise can use (unknown scheme or bad fields)")
            for attribute, value in (("service_retry", 0), ("redirects", False)):
                setattr(plugin, attribute, value)
            plugin.socket_connect_timeout = min(float(plugin.socket_connect_timeout), timeout_s)
            plugin.socket_read_timeout = min(float(plugin.socket_read_timeout), timeout_s)
            host = _target_host(plugin)
            refusal = check_host(host, allow_private_networks, resolver)
            if refusal:
                raise AppriseSetupError(index, refusal)
            self._targets.append(plugin)
            self._hosts.append(host)
        self._accepted: dict[str, set[int]] = {}

    def __repr__(self) -> str:
        return f"AppriseSink(name={self.name!r}, targets={len(self._targets)})"

    async def send(self, alert: dict[str, Any]) -> None:
        """Notify the targets that have not accepted ``alert`` yet; see the module docstring for the outcomes."""
        alert_id = str(alert.get("id"))
        done = self._accepted.setdefault(alert_id, set())
        todo = [i for i in range(len(self._targets)) if i not in done]
        for index in todo:
            refusal = await asyncio.to_thread(check_host, self._hosts[index], self._allow_private, self._resolver)
            if refusal:
                raise PermanentDeliveryError(f"apprise target {index + 1}: {refusal}")
        title, body = apprise_text(alert)
        try:
            results = await asyncio.wait_for(asyncio.to_thread(self._notify, todo, title, body), self._timeout)
        except TimeoutError:
            # The thread cannot be cancelled: it ends with its requests' own timeouts, which are no longer.
            raise DeliveryError(f"apprise did not finish within {self._timeout:g}s") from None
        done.update(i for i, ok in zip(todo, results, strict=True) if ok)
        failed = [i + 1 for i in todo if i not in done]
        if failed:
            raise DeliveryError(f"apprise target(s) {', '.join(map(str, failed))} of {len(self._targets)} failed")
        del self._accepted[alert_id]
        while len(self._accepted) > _MAX_REMEMBERED:  # alerts given up on (dead letters) are forgotten oldest first
            del self._accepted[next(iter(self._accepted))]

    def _notify(self, indices: list[int], title: str, body: str) -> list[bool]:
        results = []
        for index in indices:
            try:
                results.append(bool(self._targets[index].notify(body=body, title=title)))
            except Exception:  # a plugin bug is a failed attempt, never the deliverer's end
                results.append(False)
        return results

    async def close(self) -> None:
        """Nothing to release."""

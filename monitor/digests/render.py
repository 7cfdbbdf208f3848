"""Digest e-mails built purely: the ``digest`` templates through the e-mail renderer's environments.

The templates live with the alert e-mail's in ``monitor/templates`` and are rendered by
``monitor.delivery.email.render`` (autoescaped HTML, plain text without escaping); this module only knows what a
digest puts in them and how its message is identified.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage

from monitor.delivery.email.render import Rendered, build_message, message_id, render_html, render_text
from monitor.delivery.sinks.view import SEVERITY_COLOURS
from monitor.digests.build import Digest

__all__ = ["digest_email", "render_digest"]


def _compact(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def render_digest(digest: Digest) -> Rendered:
    """The digest's subject, text (with a sparkline) and HTML (with a table chart)."""
    context = {"digest": digest, "colour": SEVERITY_COLOURS[digest.level_end]}
    return Rendered(digest.subject, render_text("digest.txt", **context), render_html("digest.html", **context))


def digest_email(
    digest: Digest, *, sender: str, to: Sequence[str], date: datetime, manual: bool = False
) -> EmailMessage:
    """The digest e-mail. Its Message-ID names the digest and its window, so a digest re-sent for the same window
    (at-least-once, see ``monitor.digests.send``) carries the same id; a manual send gets an id of its own."""
    local = f"digest.{digest.name}." + (
        f"manual.{_compact(digest.window.end)}" if manual else _compact(digest.window.start)
    )
    return build_message(
        render_digest(digest),
        sender=sender,
        to=to,
        msg_id=message_id(local),
        date=date,
        headers={"X-Monitor-Digest": digest.name},
    )

"""E-mails built purely: Jinja2 templates to a text and an HTML part, and the MIME message around them; here for
alerts, and the same environments render digests (``monitor.digests.render``).

The HTML environment is constructed with ``autoescape=True`` outright (not chosen by file extension), so every
value from a payload is escaped in every HTML template, whatever its name. The plain-text parts come from a second
environment without escaping, because ``&amp;`` in a text/plain part would be a corruption, not a safety: a text
part is never interpreted. Each environment refuses the other's templates. Links reach the templates only as
checked ``http(s)`` URLs (``monitor.delivery.sinks.view.safe_url``).

Layout follows what mail clients render reliably: nested tables, inline ``style`` attributes only (no
``<style>`` block, no classes, no images, no scripts), widths in pixels with a ``max-width``.

Right-to-left text (Arabic, Persian, Sorani headlines) is shown as written, never reordered: in the HTML part every
element that shows article text (headline, summary paragraphs, source titles, evidence, preheader) carries
``dir="auto"``, so a mail client that implements it lays each out in its own direction and aligns it to its side,
without reordering the English labels around it; in the text part an RTL headline has a line of its own.

Bidirectional controls (embeddings, overrides, isolates and the marks LRM, RLM and ALM) can make text read
differently from what it says: a headline ``\u202etxt.exe`` shows reversed. ``build_message`` removes them from the
subject, the other headers and both parts of every message, alerts and digests alike.

The subject is folded so that it never starts on a line of its own: Python's e-mail folder (3.11) moves a subject
of 70-77 characters whole onto a continuation line (``Subject:`` CRLF SP ``...``), which every reader that unfolds
by the letter of RFC 5322, Python's own parser included, reads as a subject that starts with a space.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template

from monitor.delivery.sinks.view import SEVERITY_COLOURS, AlertView, beside, clip, one_line

__all__ = [
    "MESSAGE_ID_DOMAIN",
    "Rendered",
    "alert_email",
    "build_message",
    "clean_subject",
    "message_id",
    "render_html",
    "render_text",
    "without_bidi",
]

MESSAGE_ID_DOMAIN = "escalation-monitor"
SUBJECT_LIMIT = 200
# Bidirectional embeddings, overrides, isolates and marks (ALM, LRM, RLM): see the module docstring.
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")

_LOADER = PackageLoader("monitor", "templates")
_HTML = Environment(loader=_LOADER, autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_TEXT = Environment(
    loader=_LOADER,
    autoescape=False,  # text/plain only: see the module docstring; render_text refuses .html templates
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
# A right-to-left headline after an English label goes on a line of its own (``beside``): a text part has no markup
# to state a direction, and the bidi controls that could are removed from every message (below).
_TEXT.filters["beside"] = beside


class _SubjectHeader(UnstructuredHeader, BaseHeader):
    """A subject that keeps its first words on the ``Subject:`` line (see the module docstring)."""

    def fold(self, *, policy: Policy) -> str:
        folded = super().fold(policy=policy)
        alone = f"{self.name}:{policy.linesep} "
        # Only a value that fits on one line is moved whole, so joining it back stays far below 998 characters.
        return f"{self.name}: {folded[len(alone) :]}" if folded.startswith(alone) else folded


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("subject", _SubjectHeader)
#: The policy of every message built here: the default one, with the subject folded as above.
_POLICY = email.policy.default.clone(header_factory=_HEADERS)


@dataclass(frozen=True, slots=True)
class Rendered:
    """One e-mail's content: subject (raw, cleaned when the message is built), plain text and HTML."""

    subject: str
    text: str
    html: str


def _template(env: Environment, name: str, suffix: str) -> Template:
    if not name.endswith(suffix):
        raise ValueError(f"{name}: this environment renders only {suffix} templates")
    return env.get_template(name)


def render_html(name: str, **context: Any) -> str:
    """Render an ``.html`` template with autoescaping."""
    return _template(_HTML, name, ".html").render(colours=SEVERITY_COLOURS, **context)


def render_text(name: str, **context: Any) -> str:
    """Render a ``.txt`` template (for the text/plain part)."""
    return _template(_TEXT, name, ".txt").render(**context)


def clean_subject(subject: str, limit: int = SUBJECT_LIMIT) -> str:
    """A header-safe subject: one line, no control or bidi characters, trimmed, at most ``limit`` characters."""
    return clip(one_line(without_bidi(subject)), limit) or "(no subject)"


def without_bidi(text: str) -> str:
    """``text`` without bidirectional controls (see the module docstring)."""
    return _BIDI.sub("", text)


def message_id(local: str) -> str:
    """``<local@escalation-monitor>``; a ``local`` part that is not a valid dot-atom is replaced by its hash, so
    the same input always gives the same id (retries of one alert share it, and mail clients can deduplicate)."""
    if not _ATEXT.fullmatch(local) or len(local) > 200:
        local = "h" + hashlib.sha256(local.encode("utf-8")).hexdigest()[:40]
    return f"<{local}@{MESSAGE_ID_DOMAIN}>"


def build_message(
    rendered: Rendered,
    *,
    sender: str,
    to: Sequence[str],
    msg_id: str,
    date: datetime,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """multipart/alternative: text first, HTML last (clients show the last part they can render).

    Both parts are quoted-printable, so the message is 7-bit clean for any relay. No part and no header keeps a
    bidirectional control.
    """
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = clean_subject(rendered.subject)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = msg_id
    # RFC 3834: out-of-office robots must not answer an automatic message.
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        message[name] = one_line(without_bidi(value))
    message.set_content(without_bidi(rendered.text), cte="quoted-printable")
    message.add_alternative(without_bidi(rendered.html), subtype="html", cte="quoted-printable")
    return message


def _subject(view: AlertView) -> str:
    if view.kind == "escalation":
        return f"[Escalation] {view.title}"  # the title says from which level to which
    prefix = f"Update {view.revision}: " if view.is_update else ""
    return f"[{view.severity_name.capitalize()} {view.severity}/5] {prefix}{view.type_label}: {view.title}"


def alert_email(alert: dict[str, Any], *, sender: str, to: Sequence[str], date: datetime) -> EmailMessage:
    """The immediate e-mail for one alert. Its Message-ID comes from the alert id (the same on every retry), and
    every revision of an event refers to one thread root, so mail clients thread an event's updates."""
    view = AlertView.of(alert)
    context = {"view": view, "colour": view.colour}
    rendered = Rendered(
        subject=_subject(view),
        text=render_text("alert.txt", **context),
        html=render_html("alert.html", **context),
    )
    headers = {"X-Monitor-Alert-Id": view.id}
    if view.event_id:
        root = message_id(f"event.{view.event_id}")
        headers |= {"References": root, "In-Reply-To": root} if view.is_update else {"References": root}
    return build_message(rendered, sender=sender, to=to, msg_id=message_id(view.id), date=date, headers=headers)

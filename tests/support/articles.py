"""Test articles written for this project (in our own words) and a tiny RSS builder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    description: str
    published: datetime | None = None


ESCALATION = [
    Item(
        "esc-1",
        "US drone strike in Baghdad kills Kataib Hezbollah commander",
        "The Pentagon said a strike on a car in eastern Baghdad killed a senior commander of the Iran-backed militia.",
    ),
    Item(
        "esc-2",
        "Rockets hit Ain al-Asad air base hosting US troops",
        "Several rockets struck the base in Anbar overnight; the coalition said two service members were hurt.",
    ),
    Item(
        "esc-3",
        "Iraqi parliament votes to expel US troops",
        "Lawmakers passed a resolution calling on the government to end the presence of foreign forces in Iraq.",
    ),
    Item(
        "esc-4",
        "Protesters storm US embassy compound in Baghdad",
        "Supporters of Iran-backed militias set fire to a reception area and besieged the embassy in Baghdad.",
    ),
    Item(
        "esc-5",
        "State Department orders non-emergency staff to leave US embassy in Baghdad",
        "Americans were told not to travel to Iraq as the embassy moved to ordered departure.",
    ),
]

UNRELATED = [
    Item("calm-1", "Central bank holds rates steady", "Officials said inflation was easing slowly."),
    Item("calm-2", "Auto workers strike at three plants", "The union said talks on wages had stalled."),
    Item("calm-3", "US and UK strike Houthi radar sites in Yemen", "Jets hit targets near Hodeidah overnight."),
]


def rss(items: list[Item], *, now: datetime | None = None) -> bytes:
    """An RSS 2.0 document; items without a date are dated ``now`` (so they pass the age check)."""
    moment = now or datetime.now(UTC)
    entries = "".join(
        f"<item><title>{escape(i.title)}</title><guid isPermaLink='false'>{i.guid}</guid>"
        f"<link>https://news.example.org/{i.guid}</link><description>{escape(i.description)}</description>"
        f"<pubDate>{format_datetime(i.published or moment)}</pubDate></item>"
        for i in items
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Test wire</title>"
        f"<link>https://news.example.org/</link><description>t</description>{entries}</channel></rss>"
    ).encode()

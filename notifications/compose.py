"""Composing the emails departments receive: pure functions from facts to messages.

One place renders an email: `render()`. Every message has a plain-text and an HTML part
(Jinja2, autoescaped HTML) and an idempotency key derived from what it says (recipient,
items, ladder step, day), so composing the same message twice gives the same key and the
outbox stores it once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from deadlines.calendar import WEEKDAY_VI

TEMPLATES = Path(__file__).with_name("templates")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def vn_date(d: date) -> str:
    """A Vietnamese date as people write it: "thứ Ba, 29/4/2025"."""
    weekday = WEEKDAY_VI[d.weekday()].replace("Thứ", "thứ").replace("Chủ Nhật", "Chủ nhật")
    return f"{weekday}, {d.day}/{d.month}/{d.year}"


_env.filters["vn_date"] = vn_date


@dataclass(frozen=True)
class ItemLine:
    """One deadline item as a recipient reads it."""

    item_id: int
    number: str
    title: str
    content: str
    agency: str
    due: date
    working_days_left: int  # > 0 left, 0 due today, < 0 overdue by that many
    lead: str
    coordinating: str
    step: str = ""
    history: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        if self.working_days_left > 0:
            return f"còn {self.working_days_left} ngày làm việc"
        if self.working_days_left == 0:
            return "đến hạn hôm nay"
        return f"quá hạn {-self.working_days_left} ngày làm việc"


@dataclass(frozen=True)
class Message:
    kind: str  # digest | escalation | confirmation
    recipient: str
    recipient_name: str
    subject: str
    body_text: str
    body_html: str
    idempotency_key: str
    cc: tuple[str, ...] = ()
    item_ids: tuple[int, ...] = field(default=())


def idempotency_key(kind: str, recipient: str, item_ids, step: str, day: date) -> str:
    ids = ",".join(str(i) for i in sorted(item_ids))
    raw = f"{kind}|{recipient.lower()}|{ids}|{step}|{day.isoformat()}"
    return f"{kind}:{day.isoformat()}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


def render(template: str, **context) -> tuple[str, str]:
    """The (text, html) parts of a template pair `template.txt` / `template.html`."""
    text = _env.get_template(f"{template}.txt").render(**context)
    html = _env.get_template(f"{template}.html").render(**context)
    return text, html


def digest(
    recipient: str, recipient_name: str, agency: str, today: date, items: list[ItemLine]
) -> Message:
    """The daily digest of one recipient: due soon, due today, overdue."""
    groups = {
        "overdue": [i for i in items if i.working_days_left < 0],
        "today": [i for i in items if i.working_days_left == 0],
        "soon": [i for i in items if i.working_days_left > 0],
    }
    parts = []
    if groups["overdue"]:
        parts.append(f"{len(groups['overdue'])} việc quá hạn")
    if groups["today"]:
        parts.append(f"{len(groups['today'])} việc đến hạn hôm nay")
    if groups["soon"]:
        parts.append(f"{len(groups['soon'])} việc sắp đến hạn")
    subject = f"[Đúng hạn] {agency}: {', '.join(parts)} — {today.day}/{today.month}/{today.year}"
    text, html = render(
        "digest", agency=agency, name=recipient_name, today=today, groups=groups, subject=subject
    )
    return Message(
        kind="digest",
        recipient=recipient,
        recipient_name=recipient_name,
        subject=subject,
        body_text=text,
        body_html=html,
        idempotency_key=idempotency_key("digest", recipient, [], "", today),
        item_ids=tuple(i.item_id for i in items),
    )


def escalation(
    recipient: str,
    recipient_name: str,
    cc: tuple[str, ...],
    step_code: str,
    step_name: str,
    today: date,
    items: list[ItemLine],
) -> Message:
    """A formal escalation letter about overdue items, with their history."""
    agencies = sorted({i.agency for i in items})
    subject = (
        f"[Đúng hạn] {step_name}: {len(items)} việc quá hạn của "
        f"{', '.join(agencies) if len(agencies) <= 2 else f'{len(agencies)} cơ quan'}"
    )
    text, html = render(
        "escalation",
        name=recipient_name,
        step_name=step_name,
        today=today,
        items=items,
        subject=subject,
    )
    return Message(
        kind="escalation",
        recipient=recipient,
        recipient_name=recipient_name,
        subject=subject,
        body_text=text,
        body_html=html,
        cc=cc,
        idempotency_key=idempotency_key(
            "escalation", recipient, [i.item_id for i in items], step_code, today
        ),
        item_ids=tuple(i.item_id for i in items),
    )


def confirmation(
    recipient: str,
    recipient_name: str,
    agency: str,
    what: str,
    today: date,
    items: list[ItemLine],
    key_suffix: str,
) -> Message:
    """A confirmation: new items created by an event, or an item completed."""
    if what == "created":
        first_due = min(i.due for i in items)
        subject = (
            f"[Đúng hạn] {agency}: {len(items)} việc mới, hạn {first_due.day}/{first_due.month}/"
            f"{first_due.year}"
        )
    else:
        subject = f"[Đúng hạn] {agency}: đã ghi nhận hoàn thành {len(items)} việc"
    text, html = render(
        "confirmation", name=recipient_name, agency=agency, what=what, items=items, today=today
    )
    return Message(
        kind="confirmation",
        recipient=recipient,
        recipient_name=recipient_name,
        subject=subject,
        body_text=text,
        body_html=html,
        idempotency_key=idempotency_key(
            f"confirm-{what}", recipient, [i.item_id for i in items], key_suffix, today
        ),
        item_ids=tuple(i.item_id for i in items),
    )

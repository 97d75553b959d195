"""Composing the emails departments receive: pure functions from facts to messages.

One place renders an email: this module. `digest`, `escalation` and `confirmation` turn
facts into a `Message` (subject, plain-text and HTML parts from the Jinja2 templates, the
HTML autoescaped) with an idempotency key derived from what it says (recipient, items,
ladder step, day), so composing the same message twice gives the same key and the outbox
stores it once. `email_message` turns a stored message into the MIME email that is sent:
multipart text + HTML, the recipient's calendar attached, headers that cannot be injected.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from deadlines.agencies import EMAIL_RE as ADDRESS_RE
from deadlines.calendar import WEEKDAY_VI

TEMPLATES = Path(__file__).with_name("templates")
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")
CALENDAR_FILENAME = "lich-han-xu-ly.ics"
SIGNATURE = "Văn phòng UBND tỉnh — Hệ thống Đúng hạn"


def vn_date(d: date) -> str:
    """A Vietnamese date as people write it: "thứ Ba, 29/4/2025"."""
    weekday = WEEKDAY_VI[d.weekday()].replace("Thứ", "thứ").replace("Chủ Nhật", "Chủ nhật")
    return f"{weekday}, {short_date(d)}"


def short_date(d: date) -> str:
    """A date without its weekday, as in a subject line: "29/4/2025"."""
    return f"{d.day}/{d.month}/{d.year}"


def template_environment(folder: Path) -> Environment:
    """The one way dunghan renders what people read (emails, reports): Jinja2 templates
    from `folder`, HTML autoescaped, undefined names an error, Vietnamese date filters."""
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["vn_date"] = vn_date
    env.filters["short_date"] = short_date
    env.filters["dmy"] = lambda d: f"{d:%d/%m/%Y}"
    return env


_env = template_environment(TEMPLATES)

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def clean_header(text: str) -> str:
    """A header value on one line: control characters (CR and LF above all, which would
    start a new header) become a space, so a name or subject cannot inject headers."""
    return " ".join(_CONTROL.sub(" ", text).split())


def is_valid_address(address: str) -> bool:
    """The registry's rule for an email address (ASCII, one @, a dotted domain)."""
    return bool(ADDRESS_RE.match(address))


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
    # Set for a completion; working_days_left then counts from the completion day.
    completed_on: date | None = None
    agency_code: str = ""  # who the item belongs to, for grouping by recipient
    plan: str = ""  # the plan it belongs to, as officials name it (PlanMeta.label)

    @property
    def late(self) -> bool:
        return self.completed_on is not None and self.completed_on > self.due

    @property
    def state(self) -> str:
        if self.completed_on is not None:
            if not self.late:
                return "hoàn thành đúng hạn"
            if self.working_days_left < 0:
                return f"hoàn thành trễ hạn {-self.working_days_left} ngày làm việc"
            return "hoàn thành trễ hạn"  # after the due day, on a day off
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
    # What a digest says, line by line (`line_key`): a later digest the same day to the
    # same address says only what none of the day's earlier ones said.
    covers: tuple[str, ...] = ()


def idempotency_key(kind: str, recipient: str, item_ids, step: str, day: date) -> str:
    ids = ",".join(str(i) for i in sorted(item_ids))
    raw = f"{kind}|{recipient.lower()}|{ids}|{step}|{day.isoformat()}"
    return f"{kind}:{day.isoformat()}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


def render(template: str, **context) -> tuple[str, str]:
    """The (text, html) parts of a template pair `template.txt` / `template.html`."""
    context.setdefault("signature", SIGNATURE)
    text = _env.get_template(f"{template}.txt").render(**context)
    html = _env.get_template(f"{template}.html").render(**context)
    return text, html


def line_key(item: ItemLine) -> str:
    """An item as a digest says it: the item and how many ladder steps it has reached."""
    return f"{item.item_id}@{len(item.history)}"


def _count(n: int, what: str) -> str:
    return f"{n} việc {what}".strip()


def digest(
    recipient: str,
    recipient_name: str,
    agency: str,
    today: date,
    items: list[ItemLine],
    *,
    supplement: bool = False,
) -> Message:
    """The daily digest of one recipient: due soon, due today, overdue. A `supplement`
    follows an earlier digest of the same day and lists only what it did not."""
    if not items:
        raise ValueError(f"a digest for {recipient} needs at least one item")
    groups = {
        "overdue": [i for i in items if i.working_days_left < 0],
        "today": [i for i in items if i.working_days_left == 0],
        "soon": [i for i in items if i.working_days_left > 0],
    }
    parts = [
        _count(len(groups[key]), label)
        for key, label in (
            ("overdue", "quá hạn"),
            ("today", "đến hạn hôm nay"),
            ("soon", "sắp đến hạn"),
        )
        if groups[key]
    ]
    summary = ", ".join(parts)
    extra = " (bổ sung)" if supplement else ""
    subject = clean_header(f"[Đúng hạn] {agency}{extra}: {summary} — {short_date(today)}")
    name = clean_header(recipient_name)
    covers = tuple(sorted(line_key(i) for i in items))
    text, html = render(
        "digest",
        agency=agency,
        name=name,
        today=today,
        groups=groups,
        summary=summary,
        subject=subject,
    )
    return Message(
        kind="digest",
        recipient=recipient,
        recipient_name=name,
        subject=subject,
        body_text=text,
        body_html=html,
        idempotency_key=idempotency_key("digest", recipient, covers, "", today),
        item_ids=tuple(i.item_id for i in items),
        covers=covers,
    )


def escalation(
    recipient: str,
    recipient_name: str,
    cc: tuple[str, ...],
    step_code: str,
    step_name: str,
    today: date,
    items: list[ItemLine],
    *,
    responsible: bool | None = None,
) -> Message:
    """A formal escalation letter about overdue items, with their history.

    `responsible` says the recipient heads the agency the items belong to: the letter
    then urges them to act (đôn đốc) rather than reporting to a superior (báo cáo).
    When not given, it is inferred from the recipient's name ("Thủ trưởng — Sở X").
    """
    if not items:
        raise ValueError(f"an escalation letter to {recipient} needs at least one item")
    name = clean_header(recipient_name)
    by_agency: dict[str, list[ItemLine]] = {}
    for item in items:
        by_agency.setdefault(item.agency, []).append(item)
    agencies = sorted(by_agency)
    if responsible is None:
        responsible = len(agencies) == 1 and name.endswith(agencies[0])
    about = ", ".join(agencies) if len(agencies) <= 2 else f"{len(agencies)} cơ quan"
    subject = clean_header(
        f"[Đúng hạn] {step_name}: {len(items)} việc quá hạn của {about} — {short_date(today)}"
    )
    # The agencies most behind first: the longest overdue, then the most items.
    summary = sorted(
        (
            (agency, len(lines), max(-line.working_days_left for line in lines))
            for agency, lines in by_agency.items()
        ),
        key=lambda row: (-row[2], -row[1], row[0]),
    )
    ordered = [(agency, by_agency[agency]) for agency, _, _ in summary]
    text, html = render(
        "escalation",
        name=name,
        step_name=step_name,
        today=today,
        items=items,
        by_agency=ordered,
        summary=summary,
        responsible=responsible,
        subject=subject,
    )
    return Message(
        kind="escalation",
        recipient=recipient,
        recipient_name=name,
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
    """A confirmation: new items created by an event (`what` "created"), or an item
    completed (`what` "completed"; `today` is then the completion day)."""
    if what not in ("created", "completed"):
        raise ValueError(f"unknown confirmation {what!r}: expected 'created' or 'completed'")
    if not items:
        raise ValueError(f"a confirmation to {recipient} needs at least one item")
    if what == "created":
        dues = sorted({i.due for i in items})
        when = f"hạn {short_date(dues[0])}"
        if len(dues) > 1:
            when = f"hạn sớm nhất {short_date(dues[0])}"
        subject = f"[Đúng hạn] {agency}: {len(items)} việc mới, {when}"
    else:
        items = [replace(i, completed_on=today) for i in items]
        late = sum(1 for i in items if i.late)
        subject = f"[Đúng hạn] {agency}: đã ghi nhận hoàn thành {len(items)} việc"
        if late:
            subject += f" ({late} việc trễ hạn)"
    subject = clean_header(subject)
    name = clean_header(recipient_name)
    text, html = render(
        "confirmation",
        name=name,
        agency=agency,
        what=what,
        items=items,
        today=today,
        subject=subject,
    )
    return Message(
        kind="confirmation",
        recipient=recipient,
        recipient_name=name,
        subject=subject,
        body_text=text,
        body_html=html,
        idempotency_key=idempotency_key(
            f"confirm-{what}", recipient, [i.item_id for i in items], key_suffix, today
        ),
        item_ids=tuple(i.item_id for i in items),
    )


# ----------------------------------------------------------------------- MIME


class InvalidAddress(ValueError):
    """An address no server could deliver to; the message fails without being tried."""


# RFC 2047 encoded-words are written here rather than by the email package's folder,
# which can split a text between two encoded-words at a space and leave that space
# outside them, where a conforming reader (Gmail, Outlook, Thunderbird) drops it:
# "Ban Quản lý" would read "Ban Quảnlý". Here every space either stays between two plain
# words or an encoded-word and a plain word (where it counts), or goes inside an
# encoded-word; a long run of accented words is split after a space, inside the word.
ENCODED_WORD_MAX = 66  # ≤ 75 (RFC 2047), and "Subject: " + one word fits in 78 columns
LINE_MAX = 78
_PHRASE_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # atext: plain in a name
_TEXT_WORD = re.compile(r"[!-~]+")  # printable ASCII: plain in a subject


def _encoded_words(text: str) -> list[str]:
    """`text` as UTF-8 "B" encoded-words, each whole characters and at most
    ENCODED_WORD_MAX long, cut after a space where one is near."""
    room = (ENCODED_WORD_MAX - len("=?utf-8?b??=")) // 4 * 3
    chunks: list[str] = []
    current = ""
    for char in text:
        while current and len((current + char).encode()) > room:
            cut = current.rfind(" ") + 1
            if not 0 < cut < len(current):
                cut = len(current)
            chunks.append(current[:cut])
            current = current[cut:]
        current += char
    chunks.append(current)
    return [f"=?utf-8?b?{base64.b64encode(c.encode()).decode()}?=" for c in chunks if c]


def _tokens(text: str, plain: re.Pattern) -> list[str]:
    """The words of a header value: plain ASCII words as they are, each run of other
    words (with the spaces between them) as encoded-words."""
    tokens: list[str] = []
    run: list[str] = []
    for word in clean_header(text).split(" "):
        if word and plain.fullmatch(word) and "=?" not in word:
            if run:
                tokens += _encoded_words(" ".join(run))
                run = []
            tokens.append(word)
        elif word:
            run.append(word)
    if run:
        tokens += _encoded_words(" ".join(run))
    return tokens


def _folded(name: str, tokens: list[str]) -> str:
    """A raw header value: the tokens separated by single spaces, a line break (folding
    white space, read as that same space) wherever the line would pass 78 columns."""
    lines: list[str] = []
    current = ""
    width = len(name) + 2
    for token in tokens:
        if current and width + len(current) + 1 + len(token) > LINE_MAX:
            lines.append(current)
            current, width = token, 1
        else:
            current = f"{current} {token}" if current else token
    lines.append(current)
    return "\r\n ".join(lines)


def _set_text_header(message: EmailMessage, name: str, text: str) -> None:
    message.set_raw(name, _folded(name, _tokens(text, _TEXT_WORD)))


def _set_address_header(message: EmailMessage, name: str, display: str, address: str) -> None:
    if not is_valid_address(address):
        raise InvalidAddress(f"địa chỉ email không hợp lệ: {address!r}")
    tokens = [*_tokens(display, _PHRASE_WORD), f"<{address}>"] if display else [address]
    message.set_raw(name, _folded(name, tokens))


def message_id(key: str, sender: str) -> str:
    """A Message-ID derived from the idempotency key: a repeated send (see the outbox's
    delivery guarantee) carries the same id, so mail systems can recognise the copy."""
    domain = sender.rpartition("@")[2] or "dunghan.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def email_message(
    *,
    idempotency_key: str,
    kind: str,
    recipient: str,
    recipient_name: str,
    cc: Sequence[str],
    subject: str,
    body_text: str,
    body_html: str,
    ics_text: str,
    created_at: datetime,
    mail_from: str,
) -> EmailMessage:
    """The email as sent: multipart/alternative text + HTML (in multipart/mixed with the
    calendar when there is one), an RFC 2047 UTF-8 subject, every header on one logical
    line. `InvalidAddress` if the recipient, a copy or the sender is not an address."""
    sender_name, sender = parseaddr(mail_from)
    message = EmailMessage(policy=policy.SMTP)
    _set_address_header(message, "From", sender_name, sender)
    _set_address_header(message, "To", recipient_name, recipient)
    if cc:
        for address in cc:
            if not is_valid_address(address):
                raise InvalidAddress(f"địa chỉ email không hợp lệ: {address!r}")
        message["Cc"] = ", ".join(cc)
    _set_text_header(message, "Subject", subject)
    moment = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    message["Date"] = format_datetime(moment.astimezone(VIETNAM_TIME))
    message["Message-ID"] = message_id(idempotency_key, sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message["Content-Language"] = "vi"
    message["X-Dunghan-Kind"] = clean_header(kind)
    message.set_content(body_text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(body_html, subtype="html", charset="utf-8", cte="quoted-printable")
    if ics_text:
        message.add_attachment(
            ics_text.encode("utf-8"),
            maintype="text",
            subtype="calendar",
            filename=CALENDAR_FILENAME,
            params={"method": "PUBLISH", "charset": "utf-8"},
        )
    return message


def recipients(recipient: str, cc: Sequence[str]) -> list[str]:
    """The envelope recipients: the addressee and the copies, each once."""
    out: list[str] = []
    for address in (recipient, *cc):
        if address and address.lower() not in (a.lower() for a in out):
            out.append(address)
    return out

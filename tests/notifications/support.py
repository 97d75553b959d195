"""Test support: a real SMTP server (aiosmtpd on 127.0.0.1, a free port), outbox helpers.

The server records every message it accepts (envelope and bytes), counts connections,
and can be told to answer 4xx/5xx for chosen recipients, to drop the connection at the
n-th message, or to hold a message before answering (to kill a sender mid-batch).
"""

from __future__ import annotations

import asyncio
import email
import ipaddress
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from models.db import session_scope
from notifications import compose
from notifications.outbox import store_messages
from notifications.settings import MailSettings

NOW = datetime(2025, 4, 29, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam, a Tuesday
TODAY = date(2025, 4, 29)


def decoded(raw_header: str) -> str:
    """A header as an RFC 2047 decoder shows it (encoded-words joined, as mail clients do)."""
    return str(make_header(decode_header(raw_header)))


def raw_headers(data: bytes) -> dict[str, str]:
    """The top-level headers of a message, unfolded, before any decoding."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    out: dict[str, str] = {}
    name = ""
    for text in head.split("\r\n"):
        if text[:1] in (" ", "\t"):
            out[name] += text
        else:
            name, _, value = text.partition(":")
            out[name] = value.strip()
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)

    @property
    def key_digest(self) -> str:
        return self.message["Message-ID"]


@dataclass
class RecordingHandler:
    """The server's behaviour, changeable by the test while the server runs."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> "550 …" / "451 …"
    drop_at: int | None = None  # drop the connection when the n-th message's data arrives
    down: bool = False  # drop every new connection at EHLO
    refuse_sender: str | None = None  # the answer to MAIL FROM, e.g. "553 …"
    hold_at: int | None = None  # hold the n-th message until `release` is set
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    connections: int = 0
    rcpt_attempts: Counter = field(default_factory=Counter)
    data_count: int = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if self.down:
            server.transport.close()
            return ["421 service not available"]
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts[address] += 1
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_count += 1
        if self.drop_at is not None and self.data_count == self.drop_at:
            self.down = True
            server.transport.close()
            return "421 going down"
        if self.hold_at is not None and self.data_count == self.hold_at:
            # The server has the whole message: from here on it counts as accepted.
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
            self.arrived.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            return "250 OK held"
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 OK"

    def ids(self) -> Counter:
        """How many times each Message-ID arrived."""
        return Counter(r.message["Message-ID"] for r in self.received)


class Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()
        self.seen: list[bytes] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.seen.append(auth_data.login)
        ok = auth_data.login == self.user and auth_data.password == self.password
        return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    handler: RecordingHandler
    controller: Controller
    port: int

    def settings(self, **overrides) -> MailSettings:
        values = {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "mail_from": "Hệ thống Đúng hạn <dunghan@ubnd.example.gov.vn>",
            "timeout": 10.0,
        }
        return MailSettings(**(values | overrides))

    def stop(self) -> None:
        self.controller.stop()


def start_server(handler: RecordingHandler | None = None, **kwargs) -> SmtpServer:
    handler = handler or RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10, **kwargs)
    controller.start()
    return SmtpServer(handler, controller, port)


def line(item_id: int, days_left: int = -2, **overrides) -> compose.ItemLine:
    values = {
        "item_id": item_id,
        "number": f"X.{item_id}",
        "title": f"Báo cáo số {item_id} về cải cách thủ tục hành chính",
        "content": "Báo cáo kết quả thực hiện; khó khăn, vướng mắc & đề xuất <nếu có>",
        "agency": "Sở Tư pháp tỉnh Nghệ An",
        "due": date(2025, 4, 25),
        "working_days_left": days_left,
        "lead": "Các Sở, ban, ngành cấp tỉnh",
        "coordinating": "Văn phòng UBND tỉnh",
    }
    return compose.ItemLine(**(values | overrides))


def digests(count: int, *, domain: str = "example.gov.vn") -> list[compose.Message]:
    """`count` digests to distinct recipients, one item each."""
    return [
        compose.digest(
            f"so-{n}@{domain}",
            f"Cán bộ đầu mối — Sở số {n}",
            f"Sở số {n}",
            TODAY,
            [line(n)],
        )
        for n in range(1, count + 1)
    ]


def store(engine, messages, now=NOW) -> int:
    with session_scope(engine) as session:
        return store_messages(session, messages, now=now)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the province's own CA, in one file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.tinh.example")])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "ca.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path

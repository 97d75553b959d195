"""Benchmark: emails per second to a local SMTP server (aiosmtpd on 127.0.0.1), sending
real digests (text + HTML + calendar) over one reused connection, against opening a new
connection for every message, over plain SMTP and over STARTTLS (where each new
connection costs a TLS handshake, as with a real provincial mail server); then the whole
delivery path (claim from a SQLite outbox, compose, send over one connection per batch,
mark each message sent) for scale.

Run: `.venv/bin/python bench/email.py [--messages N]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `email`, which everything below
# imports: take the script's own folder off the import path before anything does, and
# put the repository's there instead (for the tests' certificate helper).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402

from models.db import make_engine, migrate, session_scope  # noqa: E402
from notifications import compose  # noqa: E402
from notifications.delivery import SmtpTransport, deliver_pending  # noqa: E402
from notifications.outbox import claim, store_messages  # noqa: E402
from notifications.settings import MailSettings  # noqa: E402
from tests.notifications.support import self_signed_certificate  # noqa: E402

TODAY = date(2025, 4, 29)
NOW = datetime(2025, 4, 29, 1, 0, tzinfo=UTC)


class Sink:
    """Accepts every message, keeps only a count."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digests(count: int) -> list[compose.Message]:
    """Realistic digests: six items each (overdue, due today, due soon)."""
    out = []
    for n in range(count):
        items = [
            compose.ItemLine(
                item_id=n * 10 + k,
                number=f"X.{k}",
                title="Báo cáo công tác cải cách thủ tục hành chính hằng tháng",
                content="Báo cáo kết quả thực hiện; khó khăn, vướng mắc và đề xuất, kiến nghị",
                agency=f"UBND xã số {n}",
                due=TODAY + timedelta(days=k - 3),
                working_days_left=k - 3,
                lead="UBND cấp xã",
                coordinating="Văn phòng UBND tỉnh",
            )
            for k in range(6)
        ]
        name = f"Cán bộ đầu mối — UBND xã số {n}"
        out.append(compose.digest(f"xa-{n}@example.gov.vn", name, "UBND xã", TODAY, items))
    return out


def claimed_mails(messages: list[compose.Message], folder: str | Path) -> list[tuple]:
    """The messages as the sender gets them: stored in an outbox, claimed, composed."""
    engine = make_engine(f"sqlite:///{folder}/claimed.db")
    migrate(engine)
    with session_scope(engine) as session:
        store_messages(session, messages, now=NOW)
    batch = claim(engine, now=NOW, lease=timedelta(hours=1), limit=len(messages))
    engine.dispose()
    mail_from = MailSettings().mail_from
    return [(mail, mail.email(mail_from)) for mail in batch]


def reused(settings: MailSettings, batch) -> float:
    transport = SmtpTransport(settings)
    start = time.perf_counter()
    transport.open()
    for mail, message in batch:
        transport.send(mail, message, settings.from_address)
    transport.close()
    return time.perf_counter() - start


def one_per_message(settings: MailSettings, batch) -> float:
    transport = SmtpTransport(settings)
    start = time.perf_counter()
    for mail, message in batch:
        transport.open()
        transport.send(mail, message, settings.from_address)
        transport.close()
    return time.perf_counter() - start


def pipeline(settings: MailSettings, messages: list[compose.Message]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        migrate(engine)
        with session_scope(engine) as session:
            store_messages(session, messages, now=NOW)
        start = time.perf_counter()
        report = deliver_pending(engine, now=NOW, settings=settings)
        elapsed = time.perf_counter() - start
        engine.dispose()
    assert report.sent == len(messages), report
    return elapsed


def serve(port: int, cert: str, key: str) -> None:
    """The server side, in its own process so that it does not share the sender's GIL:
    runs until its standard input closes, then prints how many messages it accepted."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    sink = Sink()
    # server_hostname: without it aiosmtpd looks its own name up in DNS on every
    # connection, which would make new connections look dearer than they are.
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        ready_timeout=10,
        server_hostname="localhost",
        tls_context=server_tls,
    )
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    print(sink.count, flush=True)


def compare(label: str, settings: MailSettings, batch) -> int:
    """Print both rates and their ratio; returns how many messages were sent."""
    reused(settings, batch[:20])  # warm up
    one_per_message(settings, batch[:20])
    with_reuse = min(reused(settings, batch) for _ in range(3))
    without = min(one_per_message(settings, batch) for _ in range(3))
    rate_reuse, rate_new = len(batch) / with_reuse, len(batch) / without
    print(label)
    print(f"  one connection for the batch:   {rate_reuse:8.0f} emails/s")
    print(f"  one connection per message:     {rate_new:8.0f} emails/s")
    print(f"  ratio (reuse / per message):    {rate_reuse / rate_new:8.2f}x")
    return 40 + 6 * len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2])
        return

    with tempfile.TemporaryDirectory() as folder:
        cert, key = self_signed_certificate(Path(folder))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), str(cert), str(key)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout.readline().strip() == "ready"
            plain = MailSettings(host="127.0.0.1", port=port, timeout=30)
            messages = digests(args.messages)
            batch = claimed_mails(messages, folder)
            size = sum(len(message.as_bytes()) for _, message in batch) / len(batch)
            print(
                f"{len(batch)} digests of {size / 1024:.1f} KiB each (text, HTML, calendar), "
                f"to aiosmtpd on 127.0.0.1:{port} (its own process)"
            )
            sent = compare("Plain SMTP (no TLS):", plain, batch)
            tls = MailSettings(
                host="127.0.0.1", port=port, security="starttls", ca_file=cert, timeout=30
            )
            sent += compare("STARTTLS (a TLS handshake per connection):", tls, batch)
            full = pipeline(plain, messages)
            sent += len(messages)
            print(
                f"Whole path, outbox to server:     {len(messages) / full:8.0f} emails/s "
                "(SQLite outbox, claim, compose, send, mark sent per message)"
            )
        finally:
            accepted, _ = server.communicate(timeout=60)
        assert int(accepted) == sent, (accepted, sent)


if __name__ == "__main__":
    main()

"""Delivering the outbox: claim a batch, send it over one connection, record each answer.

`deliver_pending()` is the one function the flows and the CLI call. Where messages go
depends on the settings (`notifications.settings`): an SMTP server, or, when none is set,
a folder of .eml files (one per message, named by its idempotency key).

The guarantee: a message stored in the outbox is delivered once. Each message is marked
sent in its own transaction right after the server accepted it, so the only way to send
one twice is a crash (or a lost database) in the instant between the server's "250 OK"
and that commit — or a connection that breaks after the message went out but before the
answer came back: that one message, still claimed, is sent again once its lease runs
out. The repeat carries the same Message-ID, so mail systems can recognise it; in .eml
mode it rewrites the same file. Everything else — reruns, concurrent senders, a server
that goes away mid-batch, a killed process — leads to exactly one delivery.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Engine

from models.store import utcnow
from notifications import outbox
from notifications.outbox import OutgoingMail, Status
from notifications.settings import MailSettings

log = logging.getLogger("dunghan.notifications")

Refused = dict[str, tuple[int, bytes]]


class ConnectionLost(Exception):
    """The connection to the server is gone; the batch cannot go on over it."""


class StopRequested(BaseException):
    """The sender was asked to stop (SIGTERM): like Ctrl-C, it gives back what it holds."""


# ------------------------------------------------------------------------ transports


class Transport(Protocol):
    """Where a batch goes: opened once, sent through, closed."""

    def describe(self) -> str: ...
    def open(self) -> None: ...
    def send(self, mail: OutgoingMail, message: EmailMessage, sender: str) -> Refused: ...
    def close(self) -> None: ...


class SmtpTransport:
    """One SMTP connection, reused for every message of a batch."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None
        self._tls: ssl.SSLContext | None = None

    def tls_context(self) -> ssl.SSLContext:
        """Built once per transport: loading the trusted CAs costs tens of milliseconds."""
        if self._tls is None:
            ca_file = self.settings.ca_file
            self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        return self._tls

    def describe(self) -> str:
        return self.settings.describe()

    def open(self) -> None:
        s = self.settings
        # The local name for EHLO without a DNS lookup (smtplib's default, getfqdn(), can
        # stall for the resolver's timeout on a machine without DNS).
        helo = socket.gethostname() or "localhost"
        if s.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, local_hostname=helo, timeout=s.timeout, context=self.tls_context()
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, local_hostname=helo, timeout=s.timeout)
        try:
            smtp.ehlo()
            if s.security == "starttls":
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()
            if s.user and s.password is not None:
                self._login(smtp, s.user, s.password.reveal())
        except BaseException:
            smtp.close()
            raise
        self.smtp = smtp

    @staticmethod
    def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
        not_ascii = False
        try:
            smtp.login(user, password)
        except UnicodeEncodeError:
            not_ascii = True
        if not_ascii:
            # smtplib sends credentials as ASCII, and its error holds the whole credential
            # string: raised out here, the new error does not carry it as its context.
            raise smtplib.SMTPException(
                "tên đăng nhập hoặc mật khẩu SMTP có ký tự ngoài ASCII (smtplib không gửi được)"
            )

    def send(self, mail: OutgoingMail, message: EmailMessage, sender: str) -> Refused:
        if self.smtp is None:
            raise ConnectionLost("chưa kết nối máy chủ SMTP")
        return self.smtp.sendmail(sender, mail.envelope_recipients, message.as_bytes())

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


class EmlFolderTransport:
    """Messages as .eml files a person can open, one per message, named by its key."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def describe(self) -> str:
        return f"thư mục {self.folder}"

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-." else "_" for c in key)
        return self.folder / f"{safe}.eml"

    def send(self, mail: OutgoingMail, message: EmailMessage, sender: str) -> Refused:
        write_atomically(self.path_of(mail.idempotency_key), message.as_bytes())
        return {}

    def close(self) -> None:
        return None


def write_atomically(target: Path, data: bytes) -> None:
    """Write a file through a temporary file and a rename: a reader (a person opening the
    folder, a web server publishing a calendar) never sees half of it, a crash leaves none.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def transport_for(settings: MailSettings) -> Transport:
    if settings.uses_smtp:
        return SmtpTransport(settings)
    return EmlFolderTransport(settings.outbox_dir)


# ------------------------------------------------------------------------ outcomes


@dataclass(frozen=True)
class Outcome:
    permanent: bool  # never retried
    connection_lost: bool  # the batch needs a new connection
    error: str
    refuses_us: bool = False  # the server refuses our sender: no message can go out now


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _answers(refused: Refused) -> str:
    return "; ".join(
        f"{address}: {code} {_decode(text)}" for address, (code, text) in refused.items()
    )


def classify(exc: OSError | smtplib.SMTPException | ConnectionLost) -> Outcome:
    """What a sending error means for the message: permanent (5xx: recorded, never
    retried), temporary (4xx: retried later), and whether the connection survived it."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        lost = any(code == 421 for code in codes)
        return Outcome(permanent, lost, f"Máy chủ từ chối người nhận — {_answers(exc.recipients)}")
    if isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code != 552:
        # The sender is the same for every message (DUNGHAN_MAIL_FROM): a refusal is about
        # the configuration, not this message. 552 is the one about the message: too big.
        return Outcome(
            False,
            exc.smtp_code == 421,
            f"Máy chủ từ chối địa chỉ người gửi {exc.sender} — {exc.smtp_code} "
            f"{_decode(exc.smtp_error)} (kiểm tra DUNGHAN_MAIL_FROM)",
            refuses_us=True,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, _decode(exc.smtp_error)
        return Outcome(code >= 500, code == 421, f"Máy chủ từ chối thư — {code} {text}")
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionLost):
        return Outcome(False, True, f"Máy chủ ngắt kết nối: {exc}")
    if isinstance(exc, OSError):
        return Outcome(False, True, f"Lỗi kết nối: {type(exc).__name__}: {exc}")
    return Outcome(False, True, f"Lỗi SMTP: {type(exc).__name__}: {exc}")


def _connect_error(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"đăng nhập bị từ chối — {exc.smtp_code} {_decode(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_decode(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------ delivery


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    transport: str = ""
    sent: int = 0
    retry: int = 0
    failed: int = 0
    released: int = 0
    batches: int = 0
    error: str | None = None  # the server could not be reached or refused the login

    def summary(self) -> str:
        text = (
            f"Gửi qua {self.transport}: {self.sent} thư đã gửi, {self.retry} thư sẽ gửi lại, "
            f"{self.failed} thư lỗi vĩnh viễn."
        )
        if self.error:
            text += f"\nLỗi: {self.error}"
        return text


def deliver_pending(
    engine: Engine,
    *,
    now: datetime | None = None,
    settings: MailSettings | None = None,
    batch_size: int = 200,
    max_batches: int | None = None,
    transport: Transport | None = None,
) -> DeliveryReport:
    """Deliver every due outbox message, `batch_size` at a time, each batch over one
    connection. Stops early when the server cannot be reached (the batch is retried
    with backoff). Safe to run in several processes at once."""
    settings = settings or MailSettings.from_env()
    run = _Run(engine, transport or transport_for(settings), settings, now or utcnow())
    try:
        while max_batches is None or run.report.batches < max_batches:
            batch = outbox.claim(engine, now=run.now, lease=settings.lease, limit=batch_size)
            if not batch:
                break
            run.report.batches += 1
            if not run.batch(batch):
                break
    except BaseException as stopped:  # Ctrl-C, SIGTERM, a cancelled flow run
        stopped.delivery_report = run.report  # what was done before the stop
        raise
    report = run.report
    log.info(
        "delivery via %s: sent=%d retry=%d failed=%d released=%d batches=%d",
        settings.redact(report.transport),
        report.sent,
        report.retry,
        report.failed,
        report.released,
        report.batches,
    )
    return report


class _Run:
    """One delivery run: its store, transport, settings, clock and tally."""

    def __init__(
        self, engine: Engine, transport: Transport, settings: MailSettings, now: datetime
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.settings = settings
        self.now = now
        self.report = DeliveryReport(transport=transport.describe())
        self._sending = False  # a message is between the transport and the server

    def batch(self, batch: list[OutgoingMail]) -> bool:
        """Send one claimed batch; False when the server is out of reach (stop the run)."""
        # Stop taking messages from the batch at half the lease, well before another
        # sender may claim them again.
        deadline = time.monotonic() + self.settings.lease.total_seconds() / 2
        if not self.connect(batch):
            return False
        untried = 0  # the first message of the batch not yet handed to the server
        try:
            for index, mail in enumerate(batch):
                untried, self._sending = index, False
                if time.monotonic() > deadline:
                    self.report.released += outbox.release(self.engine, batch[index:], now=self.now)
                    return True
                outcome = self.send(mail)
                untried = index + 1
                if outcome is None:
                    continue
                rest = batch[index + 1 :]
                if outcome.refuses_us:
                    self.report.error = self.settings.redact(outcome.error)
                    for waiting in rest:
                        self.retry(waiting, self.report.error)
                    return False
                if outcome.connection_lost and rest:
                    self.transport.close()
                    if not self.connect(rest):
                        return False
        except BaseException:
            # Stopped (Ctrl-C, SIGTERM, a cancelled run): the messages not yet tried go
            # back to the queue at once instead of waiting for the lease to run out. The
            # one on its way, if any, keeps its claim: it may have reached the server.
            rest = batch[untried + 1 :] if self._sending else batch[untried:]
            self.report.released += outbox.release(self.engine, rest, now=utcnow())
            raise
        finally:
            self.transport.close()
        return True

    def connect(self, waiting: list[OutgoingMail]) -> bool:
        """Connect; if the server is out of reach, the waiting messages are retried later."""
        try:
            self.transport.open()
        except (OSError, smtplib.SMTPException) as exc:
            error = self.settings.redact(
                f"Không kết nối được {self.transport.describe()}: {_connect_error(exc)}"
            )
            self.report.error = error
            log.warning("%s", error)
            for mail in waiting:
                self.retry(mail, error)
            return False
        return True

    def send(self, mail: OutgoingMail) -> Outcome | None:
        """Send one message and record the answer; the outcome if it was not accepted."""
        try:
            message = mail.email(self.settings.mail_from)
        except ValueError as exc:  # compose.InvalidAddress, or a header the policy refuses
            self.fail(mail, f"Không gửi được: {exc}")
            return None
        try:
            self._sending = True
            refused = self.transport.send(mail, message, self.settings.from_address)
        except (OSError, smtplib.SMTPException, ConnectionLost) as exc:
            outcome = classify(exc)
            error = self.settings.redact(outcome.error)
            if outcome.permanent:
                self.fail(mail, error)
            else:
                self.retry(mail, error)
            return outcome
        note = None
        if refused:
            note = self.settings.redact(f"Đã gửi, nhưng máy chủ từ chối: {_answers(refused)}")
        if not outbox.mark_sent(self.engine, mail, now=self.now, note=note):
            log.warning("outbox %d was sent but its claim had been taken over", mail.id)
        self.report.sent += 1
        return None

    def fail(self, mail: OutgoingMail, error: str) -> None:
        outbox.mark_failed(self.engine, mail, error=error)
        self.report.failed += 1
        log.warning("outbox %d failed: %s", mail.id, error)

    def retry(self, mail: OutgoingMail, error: str) -> None:
        status = outbox.mark_retry(
            self.engine,
            mail,
            error=error,
            retry_at=self.now + self.settings.retry_delay(mail.attempts),
            max_attempts=self.settings.max_attempts,
        )
        if status == Status.FAILED:
            self.report.failed += 1
            log.warning("outbox %d failed after %d attempts: %s", mail.id, mail.attempts, error)
        else:
            self.report.retry += 1
            log.info("outbox %d will be retried: %s", mail.id, error)

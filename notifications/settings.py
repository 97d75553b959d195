"""How mail leaves dunghan: SMTP settings from the environment, or a folder of .eml files.

Read once per delivery run by `MailSettings.from_env()`:

    DUNGHAN_SMTP_HOST       the SMTP server; unset: messages are written as .eml files
    DUNGHAN_SMTP_PORT       default 25 (none), 587 (starttls), 465 (ssl)
    DUNGHAN_SMTP_SECURITY   none | starttls | ssl (default: none)
    DUNGHAN_SMTP_USER       login, optional; needs DUNGHAN_SMTP_PASSWORD
    DUNGHAN_SMTP_PASSWORD   kept in a `Secret`: never printed, logged or stored
    DUNGHAN_SMTP_CA_FILE    a PEM file of the CA to trust (a province's own CA), optional
    DUNGHAN_SMTP_TIMEOUT    seconds per SMTP command (default 30)
    DUNGHAN_MAIL_FROM       "Name <address>" of the sender
    DUNGHAN_OUTBOX_DIR      the .eml folder when no SMTP server is set (default var/outbox)
    DUNGHAN_OUTBOX_LEASE    seconds a sender holds the messages it claimed (default 600):
                            a sender killed mid-batch delays them this long at most
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

from notifications.compose import is_valid_address

SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_FROM = "Hệ thống Đúng hạn <khong-tra-loi@dunghan.invalid>"
DEFAULT_OUTBOX_DIR = Path("var/outbox")
DEFAULT_LEASE = timedelta(minutes=10)
REDACTED = "***"


class SettingsError(ValueError):
    """A mail setting an operator must fix, with the variable's name and what it expects."""


class Secret:
    """A password that shows itself only to the code that needs it (`reveal()`)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED


@dataclass(frozen=True)
class MailSettings:
    """Where and how to deliver. The defaults write .eml files: nothing leaves the machine."""

    host: str | None = None
    port: int = 25
    security: str = "none"
    user: str | None = None
    password: Secret | None = field(default=None, repr=False)
    mail_from: str = DEFAULT_FROM
    outbox_dir: Path = DEFAULT_OUTBOX_DIR
    ca_file: Path | None = None
    timeout: float = 30.0
    # A claimed message belongs to its sender until the lease ends; a sender stops
    # taking new messages from its batch at half the lease, so leases never overlap.
    lease: timedelta = DEFAULT_LEASE
    retry_base: timedelta = timedelta(minutes=1)
    retry_cap: timedelta = timedelta(hours=2)
    # 12 attempts with this backoff span about 10 hours: a daily digest that cannot be
    # delivered by then is reported as failed rather than retried forever.
    max_attempts: int = 12

    @property
    def uses_smtp(self) -> bool:
        return bool(self.host)

    @property
    def from_address(self) -> str:
        return parseaddr(self.mail_from)[1]

    @property
    def from_name(self) -> str:
        return parseaddr(self.mail_from)[0]

    def describe(self) -> str:
        """Where messages go, in words an operator reads (no password)."""
        if not self.uses_smtp:
            return f"thư mục {self.outbox_dir} (chưa cấu hình DUNGHAN_SMTP_HOST)"
        login = f", đăng nhập {self.user}" if self.user else ""
        return f"máy chủ SMTP {self.host}:{self.port} ({self.security}{login})"

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential backoff: 1, 2, 4, … minutes after the 1st, 2nd, 3rd … attempt."""
        exponent = max(0, min(attempts - 1, 30))
        return min(self.retry_base * (2**exponent), self.retry_cap)

    def redact(self, text: str) -> str:
        """`text` with the password, and the forms SMTP AUTH sends it in, replaced by ***."""
        if self.password is None or not self.password.reveal():
            return text
        secret = self.password.reveal()
        user = self.user or ""
        forms = {
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"\0{user}\0{secret}".encode()).decode(),
            base64.b64encode(f"{user}\0{secret}".encode()).decode(),
        }
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, REDACTED)
        return text

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MailSettings:
        """The settings of the environment; `SettingsError` names any bad variable."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        problems: list[str] = []
        security = (get("DUNGHAN_SMTP_SECURITY") or "none").lower()
        if security not in SECURITY_MODES:
            problems.append(
                f"DUNGHAN_SMTP_SECURITY không hợp lệ: {security!r} "
                f"(chọn {', '.join(SECURITY_MODES)})."
            )
            security = "none"
        port = DEFAULT_PORTS[security]
        raw_port = get("DUNGHAN_SMTP_PORT")
        if raw_port is not None:
            if raw_port.isdigit() and 0 < int(raw_port) < 65536:
                port = int(raw_port)
            else:
                problems.append(
                    f"DUNGHAN_SMTP_PORT không hợp lệ: {raw_port!r} (cần số cổng 1–65535)."
                )
        timeout = 30.0
        raw_timeout = get("DUNGHAN_SMTP_TIMEOUT")
        if raw_timeout is not None:
            try:
                timeout = float(raw_timeout)
                if timeout <= 0:
                    raise ValueError
            except ValueError:
                problems.append(
                    f"DUNGHAN_SMTP_TIMEOUT không hợp lệ: {raw_timeout!r} (cần số giây > 0)."
                )
        lease = DEFAULT_LEASE
        raw_lease = get("DUNGHAN_OUTBOX_LEASE")
        if raw_lease is not None:
            try:
                lease = timedelta(seconds=float(raw_lease))
                if not 0 < lease.total_seconds() <= 86_400:
                    raise ValueError
            except (ValueError, OverflowError):
                problems.append(
                    f"DUNGHAN_OUTBOX_LEASE không hợp lệ: {raw_lease!r} "
                    "(cần số giây > 0, tối đa 86400)."
                )
        user = get("DUNGHAN_SMTP_USER")
        password = env.get("DUNGHAN_SMTP_PASSWORD") or None
        if user and not password:
            problems.append("Đã đặt DUNGHAN_SMTP_USER nhưng thiếu DUNGHAN_SMTP_PASSWORD.")
        if password and not user:
            problems.append("Đã đặt DUNGHAN_SMTP_PASSWORD nhưng thiếu DUNGHAN_SMTP_USER.")
        mail_from = get("DUNGHAN_MAIL_FROM") or DEFAULT_FROM
        address = parseaddr(mail_from)[1]
        if not is_valid_address(address) or "\r" in mail_from or "\n" in mail_from:
            problems.append(
                f"DUNGHAN_MAIL_FROM không hợp lệ: {mail_from!r} "
                "(cần dạng 'Tên <dia-chi@co-quan.gov.vn>' hoặc chỉ địa chỉ)."
            )
        ca_file = get("DUNGHAN_SMTP_CA_FILE")
        if ca_file is not None and not Path(ca_file).is_file():
            problems.append(f"DUNGHAN_SMTP_CA_FILE: không có tệp {ca_file}.")
        if problems:
            raise SettingsError("Cấu hình gửi thư chưa đúng:\n  " + "\n  ".join(problems))
        return cls(
            host=get("DUNGHAN_SMTP_HOST"),
            port=port,
            security=security,
            user=user,
            password=Secret(password) if password else None,
            mail_from=mail_from,
            outbox_dir=Path(get("DUNGHAN_OUTBOX_DIR") or DEFAULT_OUTBOX_DIR),
            ca_file=Path(ca_file) if ca_file else None,
            timeout=timeout,
            lease=lease,
        )

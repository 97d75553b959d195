"""Mail settings from the environment: sensible defaults, every mistake named, the
password never shown."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest

from notifications.settings import MailSettings, Secret, SettingsError


def test_with_nothing_set_messages_go_to_the_eml_folder():
    settings = MailSettings.from_env({})
    assert not settings.uses_smtp
    assert settings.outbox_dir == Path("var/outbox")
    assert settings.describe() == "thư mục var/outbox (chưa cấu hình DUNGHAN_SMTP_HOST)"
    assert settings.from_address == "khong-tra-loi@dunghan.invalid"


def test_a_full_smtp_configuration_is_read():
    settings = MailSettings.from_env(
        {
            "DUNGHAN_SMTP_HOST": "mail.nghean.gov.vn",
            "DUNGHAN_SMTP_SECURITY": "STARTTLS",
            "DUNGHAN_SMTP_USER": "dunghan",
            "DUNGHAN_SMTP_PASSWORD": "s3cret",
            "DUNGHAN_MAIL_FROM": "Văn phòng UBND tỉnh <dunghan@nghean.gov.vn>",
            "DUNGHAN_SMTP_TIMEOUT": "12.5",
        }
    )
    assert (settings.host, settings.port, settings.security) == (
        "mail.nghean.gov.vn",
        587,
        "starttls",
    )
    assert settings.password.reveal() == "s3cret"
    assert (settings.from_name, settings.from_address) == (
        "Văn phòng UBND tỉnh",
        "dunghan@nghean.gov.vn",
    )
    assert settings.timeout == 12.5
    assert settings.describe() == (
        "máy chủ SMTP mail.nghean.gov.vn:587 (starttls, đăng nhập dunghan)"
    )
    assert MailSettings.from_env({"DUNGHAN_SMTP_SECURITY": "ssl"}).port == 465
    assert MailSettings.from_env({"DUNGHAN_SMTP_PORT": "2525"}).port == 2525


def test_every_mistake_is_named_at_once():
    with pytest.raises(SettingsError) as error:
        MailSettings.from_env(
            {
                "DUNGHAN_SMTP_HOST": "mail",
                "DUNGHAN_SMTP_SECURITY": "tls",
                "DUNGHAN_SMTP_PORT": "70000",
                "DUNGHAN_SMTP_USER": "dunghan",
                "DUNGHAN_MAIL_FROM": "Văn phòng <not an address>",
                "DUNGHAN_SMTP_TIMEOUT": "-1",
                "DUNGHAN_SMTP_CA_FILE": "/khong/co/tep.pem",
            }
        )
    message = str(error.value)
    for expected in (
        "DUNGHAN_SMTP_SECURITY không hợp lệ: 'tls' (chọn none, starttls, ssl)",
        "DUNGHAN_SMTP_PORT không hợp lệ: '70000'",
        "thiếu DUNGHAN_SMTP_PASSWORD",
        "DUNGHAN_MAIL_FROM không hợp lệ",
        "DUNGHAN_SMTP_TIMEOUT không hợp lệ: '-1'",
        "DUNGHAN_SMTP_CA_FILE: không có tệp /khong/co/tep.pem",
    ):
        assert expected in message


def test_the_password_shows_itself_nowhere():
    settings = MailSettings.from_env(
        {"DUNGHAN_SMTP_HOST": "mail", "DUNGHAN_SMTP_USER": "u", "DUNGHAN_SMTP_PASSWORD": "pw-123"}
    )
    assert "pw-123" not in repr(settings)
    assert "pw-123" not in str(settings.password) + repr(settings.password)
    assert "pw-123" not in settings.describe()
    plain = base64.b64encode(b"\0u\0pw-123").decode()
    text = f"535 auth failed for pw-123 ({plain}, {base64.b64encode(b'pw-123').decode()})"
    assert settings.redact(text) == "535 auth failed for *** (***, ***)"
    with pytest.raises(SettingsError, match="thiếu DUNGHAN_SMTP_USER"):
        MailSettings.from_env({"DUNGHAN_SMTP_PASSWORD": "pw-123"})


def test_the_backoff_doubles_up_to_its_cap():
    settings = MailSettings(password=Secret("x"))
    delays = [settings.retry_delay(n) for n in range(1, 10)]
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert delays[-1] == timedelta(hours=2)
    # The whole ladder of attempts spans about half a day, not forever.
    total = sum((settings.retry_delay(n) for n in range(1, settings.max_attempts)), timedelta())
    assert timedelta(hours=6) < total < timedelta(hours=24)


@pytest.mark.parametrize("raw", ["0", "-5", "dài", "90000", "nan"])
def test_a_bad_outbox_lease_is_named(raw):
    with pytest.raises(SettingsError, match=f"DUNGHAN_OUTBOX_LEASE không hợp lệ: '{raw}'"):
        MailSettings.from_env({"DUNGHAN_OUTBOX_LEASE": raw})


def test_the_outbox_lease_is_a_setting_in_seconds_ten_minutes_by_default():
    assert MailSettings.from_env({}).lease == timedelta(minutes=10)
    assert MailSettings.from_env({"DUNGHAN_OUTBOX_LEASE": "90"}).lease == timedelta(seconds=90)

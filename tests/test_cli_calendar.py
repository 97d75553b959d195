"""`dunghan calendar …` as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DUNGHAN = str(Path(sys.executable).with_name("dunghan"))  # the console script of this venv


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DUNGHAN, *args], capture_output=True, text=True, timeout=60, env=env)


def test_add_uses_the_worked_saturday():
    result = run("calendar", "add", "2025-04-25", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2025-04-29"
    assert result.stderr == ""


def test_count_2025():
    result = run("calendar", "count", "2025-01-01", "2025-12-31")
    assert (result.returncode, result.stdout.strip()) == (0, "250")


def test_explain_a_swapped_day():
    result = run("calendar", "explain", "2026-01-02")
    assert result.returncode == 0
    assert "ngày nghỉ" in result.stdout and "12729/VPCP-KGVX" in result.stdout


def test_show_lists_days_off_and_worked_weekend_days_with_sources():
    result = run("calendar", "show", "2026")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "02/01/2026" in out and "10/01/2026" in out and "22/08/2026" in out
    assert "Làm việc" in out and "Công văn 12729/VPCP-KGVX" in out
    assert "Tổng cộng: 249 ngày làm việc" in out
    # A holiday on a weekend changes nothing and is not listed as a weekday off.
    assert "26/04/2026" not in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("calendar", "add", "2025-13-01", "3"), "2025-13-01"),
        (("calendar", "count", "2025-01-01", "hôm qua"), "hôm qua"),
        (("calendar", "explain", "2040-01-01"), "phạm vi"),
        (("calendar", "show", "1990"), "phạm vi"),
        (("calendar", "add", "2025-01-01", "3", "--overrides", "/no.yaml"), "không tìm thấy"),
    ],
)
def test_errors_are_clear_and_exit_2(args, needle):
    result = run(*args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_override_file_from_the_environment(tmp_path):
    import os

    path = tmp_path / "p.yaml"
    path.write_text(
        "overrides:\n  - {date: 2025-04-28, kind: off, name: Nghỉ riêng, source: QĐ 5/QĐ-UBND}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "DUNGHAN_CALENDAR_OVERRIDES": str(path)}
    result = run("calendar", "add", "2025-04-26", "1", env=env)
    assert result.stdout.strip() == "2025-04-29"

"""`dunghan due "<cụm thời hạn>"` as an operator runs it: JSON out, clear errors, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

DUNGHAN = str(Path(sys.executable).with_name("dunghan"))  # the console script of this venv
runner = CliRunner()


def due(*args: str):
    return runner.invoke(app, ["due", *args])


def ok_json(*args: str) -> dict:
    result = due(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_a_quarter_prints_its_rule_and_last_working_day():
    assert ok_json("Quý III/2025") == {
        "rule": {
            "kind": "period",
            "start": "2025-07-01",
            "end": "2025-09-30",
            "label": "Quý III/2025",
        },
        "due": ["2025-09-30"],
    }


def test_vietnamese_stays_readable_in_the_json():
    result = due("Theo Kế hoạch của UBND tỉnh")
    assert '"text": "Theo Kế hoạch của UBND tỉnh"' in result.stdout
    assert json.loads(result.stdout)["due"] == []


def test_a_phrase_naming_its_year_uses_it_whatever_year_is_asked():
    assert ok_json("Hoàn thành trước ngày 01/9/2025", "--year", "2030")["due"] == ["2025-08-29"]


def test_recurring_lists_every_due_date_of_the_year():
    out = ok_json("Trước ngày 23 hàng tháng", "--year", "2025")
    assert out["rule"] == {"kind": "recurring", "freq": "monthly", "before_day": 23}
    assert len(out["due"]) == 12 and out["due"][1] == "2025-02-21"


def test_the_year_defaults_to_the_current_one():
    this_year = date.today().year
    out = ok_json("Trong năm")
    assert out["rule"]["label"] == f"năm {this_year}"
    assert all(day.startswith(str(this_year)) for day in ok_json("Hàng quý")["due"])


def test_after_event_with_and_without_the_event():
    phrase = (
        "Sau 03 ngày làm việc kể từ ngày nhận được Quyết định công bố TTHC của bộ trưởng "
        "các Bộ, ngành Trung ương"
    )
    waiting = ok_json(phrase)
    assert waiting["due"] == []
    assert waiting["rule"]["event"] == (
        "nhận được Quyết định công bố TTHC của bộ trưởng các Bộ, ngành Trung ương"
    )
    assert waiting["rule"]["event_code"].startswith("nhan-duoc-quyet-dinh")
    assert ok_json(phrase, "--event", "2025-04-25")["due"] == ["2025-04-29"]


def test_combined_is_the_union_of_its_parts():
    out = ok_json("Hàng quý và đột xuất khi có yêu cầu", "--year", "2025")
    assert [part["kind"] for part in out["rule"]["parts"]] == ["recurring", "on_demand"]
    assert out["due"] == ["2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31"]


@pytest.mark.parametrize("phrase", ["Thường xuyên", "Kiểm tra đột xuất theo yêu cầu"])
def test_no_date_of_their_own(phrase):
    assert ok_json(phrase, "--event", "2025-04-25")["due"] == []


def test_settings_file_changes_undated_monthly_due_dates(tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text("monthly_due: {before_day: 20}\n", encoding="utf-8")
    out = ok_json("Hàng tháng", "--year", "2025", "--settings", str(settings))
    assert out["rule"]["before_day"] == 20
    assert out["due"][0] == "2025-01-17"  # 19/1/2025 Sunday, 18/1 Saturday


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("Hàng tuần lễ hội",), 'Không hiểu cụm thời hạn: "Hàng tuần lễ hội"'),
        (("Trước ngày 32/3/2025",), 'Cụm thời hạn "Trước ngày 32/3/2025"'),
        (("Quý V/2025",), "quý V không tồn tại"),
        (("Sau 3 ngày làm việc kể từ ngày nhận hồ sơ", "--event", "25/4/2025"), "25/4/2025"),
        (("Sau 3 ngày làm việc kể từ ngày nhận hồ sơ", "--event", "2025-02-30"), "2025-02-30"),
        (("Sau 3 ngày làm việc kể từ ngày nhận hồ sơ", "--event", "2040-01-01"), "phạm vi"),
        (("Hàng tháng", "--year", "1990"), "phạm vi"),
        (("Hàng tháng", "--settings", "/no/such.yaml"), "không tìm thấy"),
    ],
)
def test_errors_exit_2_with_a_vietnamese_message(args, needle):
    result = due(*args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_installed_command_prints_json_and_refuses_unknown_phrases_without_traceback():
    good = subprocess.run(
        [DUNGHAN, "due", "Quý II, III/2025"], capture_output=True, text=True, timeout=60
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["due"] == ["2025-09-30"]
    bad = subprocess.run(
        [DUNGHAN, "due", "Sau vài ngày"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert 'Không hiểu cụm thời hạn: "Sau vài ngày"' in bad.stderr
    assert "Traceback" not in bad.stderr

"""Secrets never appear in what a person or a log sees: the database URL's password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models.db import redact

DUNGHAN = str(Path(sys.executable).with_name("dunghan"))
PASSWORD = "Mk-Bi-Mat-9917"


def test_redact_hides_the_password():
    url = f"postgresql+psycopg://dunghan:{PASSWORD}@db.example:5432/dunghan"
    assert PASSWORD not in redact(url) and "***" in redact(url)
    assert PASSWORD not in redact(f"weird://u:{PASSWORD}@host/x?%%")


def test_an_unreachable_database_fails_clearly_without_its_password():
    # Port 9 on loopback: nothing listens there, the connection is refused at once.
    url = f"postgresql+psycopg://dunghan:{PASSWORD}@127.0.0.1:9/dunghan?connect_timeout=3"
    result = subprocess.run(
        [DUNGHAN, "run", "--date", "2025-03-03"],
        env={**os.environ, "DUNGHAN_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3
    assert "Không truy cập được cơ sở dữ liệu" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr

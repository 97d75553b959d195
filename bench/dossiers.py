"""Benchmark: one-stop dossiers at provincial scale, on SQLite and PostgreSQL.

For each size (default 100k and 1M seeded, realistic dossiers of a year), measures
- import: validating the export and upserting it (one transaction),
- due dates: the vectorised legal due computation alone,
- monthly KPIs: one month's indicators for every agency,
- daily sweep: the dossier alerts over the same dossiers, all made open,
printing time, peak memory (the step runs in a fresh process; its max RSS) and rows per
second, then the 1M / 100k ratio of each step (linear growth means about 10x). Each
step's answer is checked (rows stored, a sample of due dates against the scalar form,
the month's dossier count, the sweep's counts against plain SQL): exit 1 if one is wrong.

Run: `.venv/bin/python bench/dossiers.py [--sizes 100000 1000000] [--backends sqlite
postgresql]`. PostgreSQL: `DUNGHAN_BENCH_PG_URL` (default: the local test database), in a
schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(ROOT))

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SAMPLE_PROCEDURES = ROOT / "plans" / "sample-procedures.csv"
SWEEP_DAY = date(2025, 12, 15)
KPI_MONTH = "2025-06"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _context(url: str):
    from flows.engine import EngineContext

    return EngineContext.open(url)


def step_generate(n: int, path: str) -> tuple[float, float]:
    from deadlines.agencies import load_registry
    from deadlines.calendar import WorkCalendar
    from deadlines.dossier import OneStopRules
    from flows.samples import generate_dossiers, read_procedures, write_csv

    began = time.perf_counter()
    columns = generate_dossiers(
        n,
        read_procedures(SAMPLE_PROCEDURES),
        load_registry(),
        WorkCalendar.vietnam(),
        OneStopRules.load(),
    )
    write_csv(columns, path)
    return time.perf_counter() - began, _peak_mib()


def step_import(url: str, path: str) -> tuple[float, float]:
    from models.dossier_import import import_dossiers, import_procedures

    ctx = _context(url)
    import_procedures(ctx.db, SAMPLE_PROCEDURES)
    began = time.perf_counter()
    import_dossiers(ctx.db, path, ctx.cal, ctx.one_stop)
    seconds, peak = time.perf_counter() - began, _peak_mib()
    with open(path, encoding="utf-8") as handle:
        expected = sum(1 for _ in handle) - 1  # the header
    stored = _scalar(ctx, "SELECT count(*) FROM dossier")
    wrong = [] if stored == expected else [f"import: {stored:,} dossiers stored of {expected:,}"]
    return seconds, peak, wrong


def step_due(path: str) -> tuple[float, float]:
    import csv

    import numpy as np

    from deadlines.calendar import WorkCalendar
    from deadlines.dossier import UNITS, OneStopRules, legal_due, legal_due_many

    cal, rules = WorkCalendar.vietnam(), OneStopRules.load()
    with SAMPLE_PROCEDURES.open(encoding="utf-8") as handle:
        limits = {
            r["procedure_code"]: (float(r["limit_value"]), UNITS.index(r["limit_unit"]))
            for r in csv.DictReader(handle)
        }
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    received = np.array([r["received_at"] for r in rows], dtype="datetime64[s]")
    supplement = np.array(
        [r["supplement_received_at"] or "NaT" for r in rows], dtype="datetime64[s]"
    )
    values = np.array([limits[r["procedure_code"]][0] for r in rows])
    units = np.array([limits[r["procedure_code"]][1] for r in rows])
    sample = rows[:: max(1, len(rows) // 2000)]
    del rows
    began = time.perf_counter()
    due = legal_due_many(cal, rules, received, supplement, values, units)
    seconds, peak = time.perf_counter() - began, _peak_mib()
    # Each sampled dossier's due date again through the scalar calendar.
    step = max(1, len(received) // 2000)
    wrong = 0
    for index, row in zip(range(0, len(received), step), sample, strict=False):
        value, unit = limits[row["procedure_code"]]
        expected = legal_due(
            cal,
            rules,
            datetime.fromisoformat(row["received_at"]),
            datetime.fromisoformat(row["supplement_received_at"])
            if row["supplement_received_at"]
            else None,
            value,
            UNITS[unit],
        )
        wrong += due[index].astype(datetime) != expected
    found = [f"due dates: {wrong} of {len(sample):,} sampled differ from the scalar form"]
    return seconds, peak, found if wrong else []


def step_kpi(url: str) -> tuple[float, float]:
    from flows.dossiers import kpis, month_bounds
    from models.db import session_scope

    ctx = _context(url)
    began = time.perf_counter()
    with session_scope(ctx.db) as session:
        rows = kpis(session, KPI_MONTH)
    seconds, peak = time.perf_counter() - began, _peak_mib()
    # The month's dossiers counted again, plainly: completed in it, or received by its
    # end and still open then.
    start, end = month_bounds(KPI_MONTH)
    expected = _scalar(
        ctx,
        "SELECT count(*) FROM dossier WHERE (completed_at >= :start AND completed_at < :end)"
        " OR (received_at < :end AND (completed_at IS NULL OR completed_at >= :end))",
        start=start,
        end=end,
    )
    counted = sum(r["dossiers"] for r in rows)
    wrong = []
    if counted != expected or not rows:
        wrong.append(f"monthly KPIs: {counted:,} dossiers counted, {expected:,} processed")
    if any(not 0 <= r["on_time_rate"] <= 1 for r in rows):
        wrong.append("monthly KPIs: an on-time rate outside [0, 1]")
    return seconds, peak, wrong


def step_reopen(url: str) -> tuple[float, float]:
    """Not timed as a product step: makes every dossier open and due around SWEEP_DAY."""
    from sqlalchemy import text

    ctx = _context(url)
    with ctx.db.begin() as conn:
        conn.execute(text("UPDATE dossier SET completed_at = NULL"))
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE dossier"))
        else:
            conn.execute(text("ANALYZE"))
    return 0.0, _peak_mib(), []


def step_sweep(url: str) -> tuple[float, float]:
    from flows.dossiers import dossier_alerts
    from models.db import session_scope

    ctx = _context(url)
    began = time.perf_counter()
    with session_scope(ctx.db) as session:
        alerts = dossier_alerts(ctx, session, SWEEP_DAY)
    seconds, peak = time.perf_counter() - began, _peak_mib()
    # Every dossier is open now: those due on the reminder day, and those past their
    # legal due without an apology, counted again plainly.
    reminder = ctx.cal.add_working_days(SWEEP_DAY, ctx.one_stop.reminder_days_before_due)
    first = datetime.combine(reminder, datetime.min.time())
    due_soon = _scalar(
        ctx,
        "SELECT count(*) FROM dossier WHERE due >= :first AND due < :next",
        first=first,
        next=first + timedelta(days=1),
    )
    late = _scalar(
        ctx,
        "SELECT count(*) FROM dossier WHERE apology_at IS NULL AND legal_due < :today",
        today=datetime.combine(SWEEP_DAY, datetime.min.time()),
    )
    got = (sum(alerts.reminders.values()), sum(alerts.late_without_apology.values()))
    if got != (due_soon, late) or not late:
        return seconds, peak, [f"daily sweep: {got} alerts, expected {(due_soon, late)}"]
    return seconds, peak, []


def _scalar(ctx, sql: str, **params) -> int:
    from sqlalchemy import text

    with ctx.db.connect() as conn:
        return int(conn.execute(text(sql), params).scalar())


def run(func, *args) -> tuple[float, float, list[str]]:
    with ProcessPoolExecutor(max_workers=1) as pool:
        return pool.submit(func, *args).result()


def database(backend: str, folder: str):
    if backend == "sqlite":
        return f"sqlite:///{folder}/bench-{uuid.uuid4().hex[:8]}.db", None
    from sqlalchemy import create_engine, text

    base = os.environ.get("DUNGHAN_BENCH_PG_URL", PG_DEFAULT)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{base}?options={quote(f'-csearch_path={schema}')}", drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    results: dict[tuple[str, int, str], tuple[float, float]] = {}
    wrong: list[str] = []

    def record(key, outcome) -> None:
        seconds, peak, problems = outcome
        results[key] = (seconds, peak)
        wrong.extend(f"{key[0]} {key[1]:,}: {p}" for p in problems)

    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            path = f"{folder}/dossiers-{n}.csv"
            seconds, peak = run(step_generate, n, path)
            print(f"generated {n:,} dossiers in {seconds:.1f} s (peak {peak:.0f} MiB)")
            record(("-", n, "due dates"), run(step_due, path))
            for backend in args.backends:
                url, drop = database(backend, folder)
                try:
                    record((backend, n, "import"), run(step_import, url, path))
                    record((backend, n, "monthly KPIs"), run(step_kpi, url))
                    run(step_reopen, url)
                    record((backend, n, "daily sweep (all open)"), run(step_sweep, url))
                finally:
                    if drop:
                        drop()
            Path(path).unlink()
    print()
    head = ("backend", "step", "dossiers", "time (s)", "peak MiB", "rows/s")
    print(f"{head[0]:10} {head[1]:24} {head[2]:>10} {head[3]:>9} {head[4]:>9} {head[5]:>12}")
    for (backend, n, step), (seconds, peak) in results.items():
        rate = n / seconds if seconds else float("inf")
        print(f"{backend:10} {step:24} {n:>10,} {seconds:9.2f} {peak:9.0f} {rate:12,.0f}")
    if len(args.sizes) == 2:
        small, large = sorted(args.sizes)
        print(f"\ngrowth {large:,} / {small:,} ({large // small}x the dossiers):")
        for (backend, n, step), (seconds, _) in results.items():
            if n == large and (backend, small, step) in results:
                base = results[(backend, small, step)][0]
                print(
                    f"  {backend:10} {step:24} {seconds:.2f} s / {base:.2f} s = "
                    f"{seconds / base if base else float('inf'):.1f}x"
                )
    print()
    for problem in wrong:
        print(f"WRONG: {problem}")
    print("every answer checked" if not wrong else f"{len(wrong)} wrong answers")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: one-stop dossiers at provincial scale, on SQLite and PostgreSQL.

For each size (default 100k and 1M seeded, realistic dossiers of a year), measures
- import: validating the export and upserting it (one transaction),
- due dates: the vectorised legal due computation alone,
- monthly KPIs: one month's indicators for every agency,
- daily sweep: the dossier alerts over the same dossiers, all made open,
printing time, peak memory (the step runs in a fresh process; its max RSS) and rows per
second, then the 1M / 100k ratio of each step (linear growth means about 10x).

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
from datetime import date
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
    return time.perf_counter() - began, _peak_mib()


def step_due(path: str) -> tuple[float, float]:
    import csv

    import numpy as np

    from deadlines.calendar import WorkCalendar
    from deadlines.dossier import UNITS, OneStopRules, legal_due_many

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
    del rows
    began = time.perf_counter()
    legal_due_many(cal, rules, received, supplement, values, units)
    return time.perf_counter() - began, _peak_mib()


def step_kpi(url: str) -> tuple[float, float]:
    from flows.dossiers import kpis
    from models.db import session_scope

    ctx = _context(url)
    began = time.perf_counter()
    with session_scope(ctx.db) as session:
        rows = kpis(session, KPI_MONTH)
    assert rows
    return time.perf_counter() - began, _peak_mib()


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
    return 0.0, _peak_mib()


def step_sweep(url: str) -> tuple[float, float]:
    from flows.dossiers import dossier_alerts
    from models.db import session_scope

    ctx = _context(url)
    began = time.perf_counter()
    with session_scope(ctx.db) as session:
        dossier_alerts(ctx, session, SWEEP_DAY)
    return time.perf_counter() - began, _peak_mib()


def run(func, *args) -> tuple[float, float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    results: dict[tuple[str, int, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            path = f"{folder}/dossiers-{n}.csv"
            seconds, peak = run(step_generate, n, path)
            print(f"generated {n:,} dossiers in {seconds:.1f} s (peak {peak:.0f} MiB)")
            results[("-", n, "due dates")] = run(step_due, path)
            for backend in args.backends:
                url, drop = database(backend, folder)
                try:
                    results[(backend, n, "import")] = run(step_import, url, path)
                    results[(backend, n, "monthly KPIs")] = run(step_kpi, url)
                    run(step_reopen, url)
                    results[(backend, n, "daily sweep (all open)")] = run(step_sweep, url)
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


if __name__ == "__main__":
    main()

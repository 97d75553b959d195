"""Benchmark: one-stop dossiers at provincial scale, on SQLite and PostgreSQL.

For each size (default 100k and 1M seeded, realistic dossiers of a year), measures
- the raw loads of the same CSV, the yardsticks of the import: the `sqlite3` shell's
  `.import` into a plain table, and PostgreSQL's COPY into a typed table (no keys);
- import: validating the export and upserting it (one transaction) into a new database,
  and its ratio to the raw load of the same backend in the same run; both are run in turns
  (`--repeat`, default 3) and each keeps its fastest run, every run printed; then the same
  file imported again over the full table (every row an update: the bulk upsert path);
- reading alone: Arrow's streaming CSV reader against the standard library's csv module,
  both giving the chunks the importer checks; and a JSON-lines import of the same rows;
- due dates: the vectorised legal due computation alone,
- monthly KPIs: one month's indicators for every agency,
- daily sweep: the dossier alerts over the same dossiers, all made open,
printing time, peak memory (the step runs in a fresh process; its max RSS) and rows per
second, then the 1M / 100k ratio of each step (linear growth means about 10x).

Answers are checked, and the run exits non-zero on a wrong one: every row imported; per
month and agency, the dossiers processed and received and the digitised and e-result
shares equal to numpy's count over the generated columns; every KPI (both clocks) and the
sweep's counts the same on SQLite and PostgreSQL.

Run: `.venv/bin/python bench/dossiers.py [--sizes 100000 1000000] [--backends sqlite
postgresql]`. PostgreSQL: `DUNGHAN_BENCH_PG_URL` (default: the local test database), in a
schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
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
SQLITE_SHELL = shutil.which("sqlite3") or "sqlite3"  # Debian: apt-get install sqlite3
SAMPLE_PROCEDURES = ROOT / "plans" / "sample-procedures.csv"
SWEEP_DAY = date(2025, 12, 15)
KPI_MONTH = "2025-06"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _context(url: str):
    from flows.engine import EngineContext

    return EngineContext.open(url)


def step_generate(n: int, path: str, answers: str) -> tuple[float, float]:
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
    seconds = time.perf_counter() - began
    _write_answers(columns, answers)
    return seconds, _peak_mib()


def step_import(url: str, path: str, again: bool = False) -> tuple[float, float]:
    """The import of the file; `again`: its second import over the first (an upsert of
    every row: the bulk path that replaces the rows of a full table)."""
    from models.dossier_import import import_dossiers, import_procedures

    ctx = _context(url)
    import_procedures(ctx.db, SAMPLE_PROCEDURES)
    _settle(ctx.db)
    began = time.perf_counter()
    report = import_dossiers(ctx.db, path, ctx.cal, ctx.one_stop)
    seconds = time.perf_counter() - began
    rows = _count_lines(path)
    expected = (rows, 0, rows) if again else (rows, rows, 0)
    if (report.rows, report.inserted, report.updated) != expected:
        raise WrongAnswer(f"import of {path}: {report} for {rows} rows")
    return seconds, _peak_mib()


def _settle(engine) -> None:
    """Before a timed load on PostgreSQL: a checkpoint, so that the load does not pay
    for the write-ahead log of the step before it (the raw COPY and the import run in
    turns; each starts from a checkpoint)."""
    if engine.dialect.name != "postgresql":
        return
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))


def _count_lines(path: str) -> int:
    with open(path, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    return lines - (0 if path.endswith(".jsonl") else 1)


def step_raw_sqlite(folder: str, path: str) -> tuple[float, float]:
    """The sqlite3 shell's .import of the CSV into a plain table (all text, no key)."""
    target = f"{folder}/raw-{uuid.uuid4().hex[:8]}.db"
    began = time.perf_counter()
    subprocess.run([SQLITE_SHELL, target, ".mode csv", f".import {path} dossier_raw"], check=True)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    Path(target).unlink()
    return seconds, peak


def step_raw_postgres(url: str, path: str) -> tuple[float, float]:
    """COPY of the CSV into a typed table (timestamps, booleans; no key, no index)."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    options = dict(parsed.query).get("options")
    with psycopg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        dbname=parsed.database,
        options=options or "",
    ) as conn:
        conn.execute(
            "CREATE TABLE dossier_raw (dossier_id text, procedure_code text, agency_code "
            "text, channel text, received_at timestamp, completed_at timestamp, "
            "supplement_requested_at timestamp, supplement_received_at timestamp, apology_at "
            "timestamp, apology_new_due timestamp, digitized boolean, e_result boolean, "
            "paid_online boolean, handler text, supplement_requests integer, closed_at "
            "timestamp, appointment_at timestamp)"
        )
        conn.commit()
        conn.execute("CHECKPOINT")  # as before the import (bench._settle)
        began = time.perf_counter()
        with (
            conn.cursor().copy(
                "COPY dossier_raw FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy,
            open(path, "rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - began
        conn.execute("DROP TABLE dossier_raw")
        conn.commit()
    return seconds, _peak_mib()


def step_read(path: str, reader: str) -> tuple[float, float]:
    """Reading alone: the file into the importer's chunks of columns."""
    from deadlines.export_columns import DOSSIER_COLUMNS
    from models.export_reader import read_chunks

    began = time.perf_counter()
    rows = sum(len(chunk) for chunk in read_chunks(Path(path), DOSSIER_COLUMNS, reader=reader))
    seconds = time.perf_counter() - began
    if rows != _count_lines(path):
        raise WrongAnswer(f"{reader} read {rows} rows of {path}")
    return seconds, _peak_mib()


def step_to_json_lines(path: str, target: str) -> tuple[float, float]:
    import csv

    with (
        open(path, encoding="utf-8", newline="") as source,
        open(target, "w", encoding="utf-8") as out,
    ):
        for record in csv.DictReader(source):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0.0, _peak_mib()


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


def step_kpi(url: str, answers: str, backend: str) -> tuple[float, float]:
    from flows.dossiers import KPI_KEYS, kpis
    from models.db import session_scope

    ctx = _context(url)
    began = time.perf_counter()
    with session_scope(ctx.db) as session:
        rows = kpis(session, KPI_MONTH, rules=ctx.one_stop)
    seconds = time.perf_counter() - began
    expected = _load(answers)
    every: dict = {}
    with session_scope(ctx.db) as session:
        for month in MONTHS:
            found = rows if month == KPI_MONTH else kpis(session, month, rules=ctx.one_stop)
            got = {
                r["agency"]: [
                    r["dossiers"],
                    r["received"],
                    round(r["digitized_rate"], 4),
                    round(r["e_result_rate"], 4),
                ]
                for r in found
            }
            _check(f"monthly KPIs {month} ({backend})", got, expected[month])
            every[month] = [[r[k] for k in KPI_KEYS] for r in found]
    _agree(f"{answers}.kpi", backend, every)
    return seconds, _peak_mib()


def _agree(path: str, backend: str, figures) -> None:
    """Every backend's figures the same as the first one's (all of them, both clocks)."""
    figures = json.loads(json.dumps(figures, default=str))
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"backend": backend, "figures": figures}, out)
        return
    first = _load(path)
    if first["figures"] != figures:
        raise WrongAnswer(f"{path}: {backend} disagrees with {first['backend']}")


class WrongAnswer(AssertionError):
    pass


RATES = (
    "on_time_rate",
    "online_rate",
    "digitized_rate",
    "e_result_rate",
    "online_payment_rate",
    "apology_rate",
)


def _figures(rows: list[dict]) -> dict:
    return {
        row["agency"]: [row["dossiers"]]
        + [None if row[k] is None else round(row[k], 4) for k in RATES]
        for row in rows
    }


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _check(what: str, got, expected) -> None:
    if json.loads(json.dumps(got)) != expected:
        raise WrongAnswer(f"{what}: got {got!r}, expected {expected!r}")


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


def step_sweep(url: str, answers: str, backend: str) -> tuple[float, float]:
    from flows.dossiers import dossier_alerts
    from models.db import session_scope

    ctx = _context(url)
    began = time.perf_counter()
    with session_scope(ctx.db) as session:
        alerts = dossier_alerts(ctx, session, SWEEP_DAY)
    seconds = time.perf_counter() - began
    got = {
        "reminders": alerts.reminders,
        "at_risk": alerts.at_risk,
        "late_without_apology": alerts.late_without_apology,
        "awaiting_supplement": alerts.awaiting_supplement,
    }
    if not any(got.values()):
        raise WrongAnswer(f"daily sweep {SWEEP_DAY} ({backend}): nothing due, nothing late")
    _agree(f"{answers}.sweep", backend, got)
    return seconds, _peak_mib()


def _write_answers(c: dict, answers: str) -> None:
    """Figures computed here with numpy from the generated columns, following the
    definitions of `flows.dossiers.processed_in` and `kpis`: per month and agency, the
    dossiers processed, those received, and the digitised and e-result shares."""
    import numpy as np

    from flows.dossiers import month_bounds

    agency = np.asarray(c["agency_code"]).astype(str)
    received = c["received_at"]
    ended = np.where(np.isnat(c["completed_at"]), c["closed_at"], c["completed_at"])

    def figures(month: str) -> dict:
        start, end = (np.datetime64(b, "s") for b in month_bounds(month))
        in_month = ~np.isnat(ended) & (ended >= start) & (ended < end)
        open_at_end = (received < end) & (np.isnat(ended) | (ended >= end))
        counted = in_month | open_at_end
        out = {}
        for code in sorted(set(agency[counted].tolist())):
            m = counted & (agency == code)
            k = int(m.sum())
            out[code] = [
                k,
                int((m & (received >= start) & (received < end)).sum()),
                round(int((m & (c["digitized"] == "1")).sum()) / k, 4),
                round(int((m & (c["e_result"] == "1")).sum()) / k, 4),
            ]
        return out

    with open(answers, "w", encoding="utf-8") as out:
        json.dump({month: figures(month) for month in MONTHS}, out)


MONTHS = (KPI_MONTH, "2025-01", "2025-12")


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


GOALS = {"ratio": 3.0, "peak MiB": 300, "growth": 11.0}
RAW_STEP = {"sqlite": "raw: sqlite3 .import", "postgresql": "raw: COPY typed table"}
RUNS: dict[tuple[str, int, str], list[float]] = {}  # every run's time of the repeated steps


def raw_and_import(results, backend: str, n: int, folder: str, path: str, repeat: int):
    """The raw load and the import, in turns, `repeat` times each, each import into a new
    database: this machine's speed drifts by tens of percent within a minute, so each
    side keeps its fastest run (its peak memory: the highest). Returns the last
    database (URL and its drop) for the steps that follow."""
    raws, imports = [], []
    url, drop = None, None
    for attempt in range(repeat):
        if drop:
            drop()
        url, drop = database(backend, folder)
        if backend == "sqlite":
            raws.append(run(step_raw_sqlite, folder, path))
        else:
            raws.append(run(step_raw_postgres, url, path))
        imports.append(run(step_import, url, path))
        if attempt < repeat - 1 and backend == "sqlite":
            _remove_sqlite(url)
    for step, found in ((RAW_STEP[backend], raws), ("import", imports)):
        RUNS[(backend, n, step)] = [seconds for seconds, _ in found]
        results[(backend, n, step)] = (min(RUNS[(backend, n, step)]), max(p for _, p in found))
    return url, drop


def _remove_sqlite(url: str) -> None:
    file = url.removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):
        Path(file + suffix).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the raw load and the import (fastest kept)"
    )
    args = parser.parse_args()
    results: dict[tuple[str, int, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            path = f"{folder}/dossiers-{n}.csv"
            answers = f"{folder}/answers-{n}.json"
            seconds, peak = run(step_generate, n, path, answers)
            print(f"generated {n:,} dossiers in {seconds:.1f} s (peak {peak:.0f} MiB)")
            results[("-", n, "due dates")] = run(step_due, path)
            results[("-", n, "read: Arrow CSV")] = run(step_read, path, "arrow")
            results[("-", n, "read: csv module")] = run(step_read, path, "stdlib")
            for backend in args.backends:
                url, drop = raw_and_import(results, backend, n, folder, path, args.repeat)
                try:
                    results[(backend, n, "import again (upsert)")] = run(
                        step_import, url, path, True
                    )
                    results[(backend, n, "monthly KPIs")] = run(step_kpi, url, answers, backend)
                    run(step_reopen, url)
                    results[(backend, n, "daily sweep (all open)")] = run(
                        step_sweep, url, answers, backend
                    )
                finally:
                    if drop:
                        drop()
            if n == min(args.sizes) and "sqlite" in args.backends:
                lines = f"{folder}/dossiers-{n}.jsonl"
                run(step_to_json_lines, path, lines)
                url, _ = database("sqlite", folder)
                results[("sqlite", n, "import JSON lines")] = run(step_import, url, lines)
                Path(lines).unlink()
            Path(path).unlink()
    report(results, args.sizes)


def report(results, sizes) -> None:
    print()
    head = ("backend", "step", "dossiers", "time (s)", "peak MiB", "rows/s")
    print(f"{head[0]:10} {head[1]:24} {head[2]:>10} {head[3]:>9} {head[4]:>9} {head[5]:>12}")
    for (backend, n, step), (seconds, peak) in results.items():
        rate = n / seconds if seconds else float("inf")
        print(f"{backend:10} {step:24} {n:>10,} {seconds:9.2f} {peak:9.0f} {rate:12,.0f}")
    print(
        "\nimport against the raw load of the same file, same run "
        f"(goal: within {GOALS['ratio']:.0f}x, peak <= {GOALS['peak MiB']} MiB):"
    )
    for (backend, n, step), (seconds, peak) in results.items():
        if step != "import":
            continue
        raw_step = RAW_STEP[backend]
        base = results[(backend, n, raw_step)][0]
        ratio = seconds / base
        print(
            f"  {backend:10} {n:>10,}: {seconds:6.2f} s / {base:5.2f} s ({raw_step[5:]}) = "
            f"{ratio:4.1f}x {'(goal met)' if ratio <= GOALS['ratio'] else '(goal MISSED)'}; "
            f"peak {peak:.0f} MiB {'(goal met)' if peak <= GOALS['peak MiB'] else '(MISSED)'}"
        )
        for shown in (raw_step, step):
            runs = ", ".join(f"{t:.2f}" for t in RUNS.get((backend, n, shown), []))
            print(f"  {'':10} {'':>10}  {shown} runs (s): {runs}")
        again = results.get((backend, n, "import again (upsert)"))
        if again:
            print(
                f"  {'':10} {'':>10}  import again over the full table (every row updated): "
                f"{again[0]:.2f} s = {again[0] / base:.1f}x the raw load (not a goal)"
            )
    for n in sizes:
        arrow, stdlib = (results[("-", n, f"read: {r}")][0] for r in ("Arrow CSV", "csv module"))
        print(
            f"  reading {n:,} rows: Arrow {arrow:.2f} s, csv module {stdlib:.2f} s "
            f"= {stdlib / arrow:.1f}x slower"
        )
        if ("sqlite", n, "import JSON lines") in results:
            lines = results[("sqlite", n, "import JSON lines")][0]
            csv_import = results[("sqlite", n, "import")][0]
            print(
                f"  JSON lines import {n:,} rows (SQLite): {lines:.2f} s against CSV "
                f"{csv_import:.2f} s = {lines / csv_import:.1f}x"
            )
    if len(sizes) == 2:
        small, large = sorted(sizes)
        print(f"\ngrowth {large:,} / {small:,} ({large // small}x the dossiers):")
        for (backend, n, step), (seconds, _) in results.items():
            if n == large and (backend, small, step) in results:
                base = results[(backend, small, step)][0]
                growth = seconds / base if base else float("inf")
                mark = ""
                if step == "import":
                    mark = " (goal met)" if growth <= GOALS["growth"] else " (goal MISSED)"
                print(
                    f"  {backend:10} {step:24} {seconds:.2f} s / {base:.2f} s = {growth:.1f}x{mark}"
                )
    print(
        "\nanswers: every import complete; KPI counts equal to numpy's; all KPIs and the "
        "sweep's counts the same on every backend"
    )


if __name__ == "__main__":
    try:
        main()
    except WrongAnswer as exc:
        print(f"WRONG ANSWER: {exc}", file=sys.stderr)
        sys.exit(1)

"""Benchmark: one million (date, n) working-day additions over 2024-2030.

Compares dunghan's vectorised `add_working_days_many` with
- the `holidays` package's `get_nth_working_day` (a day-by-day loop; timed on a sample
  and extrapolated to the full size),
- `numpy.busday_offset` given the same days off (it cannot express a worked Saturday),
and checks every answer against dunghan's scalar `add_working_days`: exits 1 if the
vectorised form differs from it on any pair.

Run: `make bench` or `.venv/bin/python bench/calendar.py [--size N] [--sample M]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `calendar`, which `holidays` imports:
# take the script's own folder off the import path before anything imports it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import holidays  # noqa: E402
import numpy as np  # noqa: E402

from deadlines.calendar import WorkCalendar  # noqa: E402


def timed(func, *args, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def busday(days: np.ndarray, ns: np.ndarray, holidays_off: np.ndarray) -> np.ndarray:
    # Same semantics as ours: the start day is not counted. For n > 0 a day off rolls
    # backwards first, for n < 0 forwards; then the offset. Each pair is computed once.
    out = np.empty_like(days)
    ahead = ns > 0
    out[ahead] = np.busday_offset(days[ahead], ns[ahead], roll="backward", holidays=holidays_off)
    out[~ahead] = np.busday_offset(days[~ahead], ns[~ahead], roll="forward", holidays=holidays_off)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=5_000, help="pairs timed with holidays")
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    lo, hi = np.datetime64("2024-01-01"), np.datetime64("2030-12-31")
    days = lo + rng.integers(0, int((hi - lo).astype(int)) + 1, args.size).astype("timedelta64[D]")
    ns = rng.integers(-30, 61, args.size)
    ns[ns == 0] = 1

    cal = WorkCalendar.vietnam()
    ours_s, ours = timed(cal.add_working_days_many, days, ns)
    tracemalloc.start()
    cal.add_working_days_many(days, ns)
    ours_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    weekdays_off = np.array(
        [
            np.datetime64(n.day)
            for year in range(2015, 2036)
            for n in cal.exceptions(year)
            if not n.working
        ],
        dtype="datetime64[D]",
    )
    busday_s, busday_result = timed(busday, days, ns, weekdays_off)

    vn = holidays.country_holidays("VN", years=range(2023, 2032))
    sample = min(args.sample, args.size)
    py_days = days[:sample].astype(object)
    py_ns = ns[:sample].tolist()
    start = time.perf_counter()
    pkg = [vn.get_nth_working_day(d, n) for d, n in zip(py_days, py_ns, strict=True)]
    pkg_sample_s = time.perf_counter() - start
    pkg_s = pkg_sample_s * args.size / sample

    start = time.perf_counter()
    scalar = [
        cal.add_working_days(d, n) for d, n in zip(days.astype(object), ns.tolist(), strict=True)
    ]
    scalar_s = time.perf_counter() - start
    scalar_arr = np.array(scalar, dtype="datetime64[D]")

    diff_ours = int((ours != scalar_arr).sum())
    diff_busday = int((busday_result != scalar_arr).sum())
    diff_pkg = sum(
        1 for a, b in zip(pkg, scalar_arr[:sample].astype(object), strict=True) if a != b
    )

    print(f"{args.size:,} random (date, n) pairs, 2024-2030, n in [-30, 60]\n")
    print(f"{'method':44} {'time (s)':>10} {'pairs/s':>14}")
    rows = [
        ("dunghan add_working_days_many (vectorised)", ours_s),
        ("numpy.busday_offset (same days off)", busday_s),
        ("dunghan add_working_days (scalar loop)", scalar_s),
        (f"holidays get_nth_working_day (x{args.size // sample} of {sample:,})", pkg_s),
    ]
    for name, secs in rows:
        print(f"{name:44} {secs:10.4f} {args.size / secs:14,.0f}")
    print()
    print(f"speed-up vs holidays loop:   {pkg_s:.2f} s / {ours_s:.4f} s = {pkg_s / ours_s:,.0f}x")
    print(
        f"speed-up vs busday_offset:   {busday_s:.4f} s / {ours_s:.4f} s = {busday_s / ours_s:.2f}x"
    )
    print(
        f"speed-up vs our scalar loop: {scalar_s:.2f} s / {ours_s:.4f} s "
        f"= {scalar_s / ours_s:,.0f}x"
    )
    print(f"peak extra memory of the vectorised call: {ours_peak / 2**20:.1f} MiB")
    print()
    print(
        f"answers differing from our scalar form: vectorised {diff_ours:,}; "
        f"busday_offset {diff_busday:,} of {args.size:,} (no worked Saturdays); "
        f"holidays {diff_pkg:,} of {sample:,} (lacks the 2026 New Year swap)"
    )
    # Ours must agree with itself; busday_offset (no worked Saturdays) and holidays (no
    # 2026 swap) differ by design, but never by everything (that would be a broken input).
    wrong = []
    if diff_ours:
        wrong.append(f"vectorised and scalar forms differ on {diff_ours:,} pairs")
    if diff_busday >= args.size or diff_pkg >= sample:
        wrong.append("every comparison differs: the inputs are broken")
    for line in wrong:
        print(f"WRONG: {line}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())

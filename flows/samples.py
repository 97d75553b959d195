"""Realistic, seeded one-stop exports: for demonstrations, tests and the benchmark.

The shares below are assumptions that look like a province's monthly figures on the
national portal (most dossiers online and on time, a few late, most late ones
apologised for); they are not legal facts and nothing computes KPIs from them.
"""

from __future__ import annotations

import csv
import itertools
from datetime import date
from pathlib import Path

import numpy as np

from deadlines.agencies import Registry
from deadlines.calendar import WorkCalendar
from deadlines.dossier import UNITS, OneStopRules, legal_due_many
from deadlines.export_columns import DOSSIER_COLUMNS

SHARE_ONLINE, SHARE_POSTAL = 0.78, 0.03
SHARE_SUPPLEMENT = 0.08
SHARE_ASKED_TWICE = 0.05  # of the supplemented: a second request, which the law forbids
SHARE_NEVER_SUPPLIED = 0.04  # of the supplemented: the citizen never completes it
SHARE_LATE, SHARE_OPEN = 0.04, 0.015
SHARE_LATE_APOLOGISED = 0.85
SHARE_APOLOGY_LATE = 0.1  # of the apologies: sent on or after the due day
SHARE_APPOINTMENT = 0.9  # exports carrying the receipt slip's appointment
SHARE_APPOINTMENT_BEYOND_LAW = 0.01  # of those: a day later than the law allows
SHARE_DIGITIZED, SHARE_E_RESULT = 0.97, 0.94
SHARE_FEE, SHARE_PAID_ONLINE = 0.45, 0.7
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Bùi", "Hồ")
MIDDLE = ("Văn", "Thị", "Đức", "Minh", "Thu", "Hữu", "Ngọc", "Quang")
GIVEN = ("An", "Bình", "Chi", "Dũng", "Hà", "Hải", "Hoa", "Lan", "Long", "Mai", "Nam", "Thảo")


def read_procedures(path: str | Path) -> list[dict]:
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def generate_dossiers(
    n: int,
    procedures: list[dict],
    registry: Registry,
    cal: WorkCalendar,
    rules: OneStopRules,
    *,
    start: date = date(2025, 1, 2),
    end: date = date(2025, 12, 31),
    seed: int = 2025,
) -> dict[str, np.ndarray]:
    """Columns of `n` dossiers received between `start` and `end` (as of `end`)."""
    rng = np.random.default_rng(seed)
    span = (end - start).days + 1
    day = np.datetime64(start) + rng.integers(0, span, n).astype("timedelta64[D]")
    # Mostly during office hours; some online submissions at night and at weekends.
    minute = np.where(
        rng.random(n) < 0.85, rng.integers(7 * 60, 17 * 60, n), rng.integers(0, 24 * 60, n)
    )
    received = day.astype("datetime64[s]") + (minute * 60).astype("timedelta64[s]")
    received = np.sort(received)

    weights = np.array([3.0 if p["level"] == "commune" else 1.0 for p in procedures])
    pick = rng.choice(len(procedures), n, p=weights / weights.sum())
    codes = np.array([p["procedure_code"] for p in procedures])[pick]
    values = np.array([float(p["limit_value"]) for p in procedures])[pick]
    units = np.array([UNITS.index(p["limit_unit"]) for p in procedures])[pick]
    commune_level = np.array([p["level"] == "commune" for p in procedures])[pick]

    agency = _agencies(rng, registry, received, commune_level)
    channel = np.where(
        rng.random(n) < SHARE_ONLINE,
        "online",
        np.where(rng.random(n) < SHARE_POSTAL / (1 - SHARE_ONLINE), "postal", "direct"),
    )
    has_supplement = rng.random(n) < SHARE_SUPPLEMENT
    requested = received + (rng.integers(2, 48, n) * 3600).astype("timedelta64[s]")
    supplied = requested + (rng.integers(1, 7 * 24, n) * 3600).astype("timedelta64[s]")
    nat = np.datetime64("NaT", "s")
    requested = np.where(has_supplement, requested, nat)
    never = has_supplement & (rng.random(n) < SHARE_NEVER_SUPPLIED)
    supplied = np.where(has_supplement & ~never, supplied, nat)
    requests = np.where(has_supplement, np.where(rng.random(n) < SHARE_ASKED_TWICE, 2, 1), 0)
    first = legal_due_many(cal, rules, received, np.full(n, nat), values, units)
    legal = legal_due_many(cal, rules, received, supplied, values, units)
    counted_from, _ = cal.normalize_receipt_many(np.where(np.isnat(supplied), received, supplied))

    fate = rng.random(n)
    late = fate < SHARE_LATE
    recent = received >= np.datetime64(end, "s") - np.timedelta64(14, "D")
    still_open = (fate >= SHARE_LATE) & (fate < SHARE_LATE + SHARE_OPEN) & recent
    span_s = np.maximum((legal - counted_from).astype(np.int64), 3600)
    on_time_at = counted_from + (rng.random(n) * span_s).astype("timedelta64[s]")
    late_at = legal + (rng.integers(1, 10 * 24, n) * 3600).astype("timedelta64[s]")
    completed = np.where(late, late_at, on_time_at)
    horizon = np.datetime64(end, "s") + np.timedelta64(17 * 3600, "s")
    completed = np.where(still_open | (completed > horizon) | never, nat, completed)
    # Never completed by the citizen: closed once the decree's wait is over (15 days).
    closed_at = requested + np.timedelta64(16, "D")
    closed = np.where(never & (closed_at <= horizon), closed_at, nat)

    apologised = late & ~never & (rng.random(n) < SHARE_LATE_APOLOGISED)
    apology_at = legal - np.timedelta64(26 * 3600, "s")
    too_late = rng.random(n) < SHARE_APOLOGY_LATE
    apology_at = np.where(too_late, legal + np.timedelta64(3600, "s"), apology_at)
    apology_at = np.maximum(apology_at, counted_from)
    apology_new_due = legal + np.timedelta64(5 * 24 * 3600, "s")
    apology_at = np.where(apologised, apology_at, nat)
    apology_new_due = np.where(apologised, apology_new_due, nat)

    slip = rng.random(n) < SHARE_APPOINTMENT
    beyond = slip & (rng.random(n) < SHARE_APPOINTMENT_BEYOND_LAW)
    appointment = np.where(beyond, first + np.timedelta64(1, "D"), first)
    appointment = np.where(slip, appointment, nat)

    has_fee = rng.random(n) < SHARE_FEE
    paid = np.where(has_fee, np.where(rng.random(n) < SHARE_PAID_ONLINE, "1", "0"), "")
    handler = np.array(
        [
            f"{FAMILY[a]} {MIDDLE[b]} {GIVEN[c]}"
            for a, b, c in zip(
                rng.integers(0, len(FAMILY), n),
                rng.integers(0, len(MIDDLE), n),
                rng.integers(0, len(GIVEN), n),
                strict=True,
            )
        ]
    )
    return {
        "dossier_id": np.char.add("HS-", np.arange(1, n + 1).astype(str)),
        "procedure_code": codes,
        "agency_code": agency,
        "channel": channel,
        "received_at": received,
        "completed_at": completed,
        "supplement_requested_at": requested,
        "supplement_received_at": supplied,
        "apology_at": apology_at,
        "apology_new_due": apology_new_due,
        "digitized": np.where(rng.random(n) < SHARE_DIGITIZED, "1", "0"),
        "e_result": np.where(rng.random(n) < SHARE_E_RESULT, "1", "0"),
        "paid_online": paid,
        "handler": handler,
        "supplement_requests": np.where(requests > 0, requests.astype(str), ""),
        "closed_at": closed,
        "appointment_at": appointment,
    }


def _agencies(rng, registry: Registry, received: np.ndarray, commune_level: np.ndarray):
    """Commune-level dossiers go to districts before 1/7/2025 and to communes after;
    provincial ones to the departments active on the day."""
    day = received.astype("datetime64[D]")
    out = np.empty(received.shape, dtype=object)
    boundaries = sorted(
        {np.datetime64(a.active_from) for a in registry.agencies.values() if a.active_from}
        | {np.datetime64(a.active_to) + 1 for a in registry.agencies.values() if a.active_to}
        | {day.min(), day.max() + 1}
    )
    for lo, hi in itertools.pairwise(boundaries):
        window = (day >= lo) & (day < hi)
        if not window.any():
            continue
        on = lo.astype(object)
        local = [
            a.code for a in registry.active_on(on) if str(a.kind) in ("commune", "ward", "district")
        ]
        provincial = [
            a.code for a in registry.active_on(on) if str(a.kind) in ("department", "one_stop")
        ]
        for mask, pool in ((window & commune_level, local), (window & ~commune_level, provincial)):
            if mask.any() and pool:
                out[mask] = np.array(pool, dtype=object)[rng.integers(0, len(pool), mask.sum())]
    return out


def write_csv(columns: dict[str, np.ndarray], path: str | Path) -> int:
    """Write generated columns as a one-stop export CSV; returns the number of rows."""
    text_columns = []
    for name in DOSSIER_COLUMNS:
        values = columns[name]
        if np.issubdtype(values.dtype, np.datetime64):
            as_text = np.datetime_as_string(values, unit="s")
            values = np.where(np.isnat(values), "", as_text)
        text_columns.append(values.astype(str).tolist())
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DOSSIER_COLUMNS)
        writer.writerows(zip(*text_columns, strict=True))
    return len(text_columns[0])

"""The columns of a one-stop export (dunghan's own names), declared once.

The importer reads, checks and stores exactly these; a new column or rule is a line
here and a check in `deadlines.dossier_checks`, not a change to the import's mechanics.
"""

from __future__ import annotations

CHANNELS = ("online", "direct", "postal")
FLAG_COLUMNS = ("digitized", "e_result", "paid_online")
DOSSIER_COLUMNS = (
    "dossier_id",
    "procedure_code",
    "agency_code",
    "channel",
    "received_at",
    "completed_at",
    "supplement_requested_at",
    "supplement_received_at",
    "apology_at",
    "apology_new_due",
    "digitized",
    "e_result",
    "paid_online",
    "handler",
)
TIME_COLUMNS = tuple(c for c in DOSSIER_COLUMNS if c.endswith("_at") or c == "apology_new_due")
# A file may leave these out altogether (blank everywhere).
OPTIONAL_COLUMNS = frozenset({"handler"})

"""The reports: Prefect artifacts, the compliance review (inspection, recompute) and the
monthly scorecard, with their templates."""

"""What the report, the dashboard, ``top`` and the metrics show: numbers (``summary``) and
plots (``plots``), computed from the ledger or from a replay, never from a detector."""

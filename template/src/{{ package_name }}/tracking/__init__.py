"""Experiment tracking: record each run (record.py), rank runs (runs.py), and
report what a change does to the metrics (report.py)."""

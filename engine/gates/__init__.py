"""Readiness gates: checks of a dataset and of a model version, as pass/fail reports."""

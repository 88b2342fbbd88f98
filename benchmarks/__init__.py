"""Benchmarks of the real daemon (``scripts/bench``); not part of the shipped package."""

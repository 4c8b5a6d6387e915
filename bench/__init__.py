"""Benchmarks of the Energy Management System against its local runtime: `python -m bench`."""

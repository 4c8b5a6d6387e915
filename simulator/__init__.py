"""Simulated smart meters feeding the readings queue: see README.md for usage and the demo numbers."""

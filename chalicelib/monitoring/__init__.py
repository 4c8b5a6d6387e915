"""Monitoring: readings, exact hourly totals, over-consumption alerts, history."""

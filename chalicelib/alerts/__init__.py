"""Alerts: each owner's inbox and the admins' feed, kept until acknowledged."""

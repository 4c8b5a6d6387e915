"""Devices: smart meters, their owners and their API keys."""

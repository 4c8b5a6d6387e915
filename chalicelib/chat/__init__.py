"""Support chat: FAQ rules, then Gemini, then a human admin."""

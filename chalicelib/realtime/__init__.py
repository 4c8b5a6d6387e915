"""Real time: WebSocket connections, live frames and their delivery."""

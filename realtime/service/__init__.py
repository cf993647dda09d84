"""The realtime service: its settings, roles, metrics and HTTP endpoints."""

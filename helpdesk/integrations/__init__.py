"""Integrations with outside services (Discord)."""

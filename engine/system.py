"""The engine service for events and info (placeholder until implemented)."""


class SystemService:
    """Mixin of engine.local.LocalEngine."""

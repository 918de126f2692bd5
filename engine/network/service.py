"""The engine service for networks (placeholder until implemented)."""


class NetworkService:
    """Mixin of engine.local.LocalEngine."""

"""The engine service for containers (placeholder until implemented)."""


class ContainerService:
    """Mixin of engine.local.LocalEngine."""

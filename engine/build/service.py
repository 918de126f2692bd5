"""The engine service for image building (engine.build) (placeholder until implemented)."""


class BuildService:
    """Mixin of engine.local.LocalEngine."""

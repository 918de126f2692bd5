"""The engine service for named volumes (placeholder until implemented)."""


class VolumeService:
    """Mixin of engine.local.LocalEngine."""

"""The engine service for the image store (placeholder until implemented)."""


class ImageService:
    """Mixin of engine.local.LocalEngine."""

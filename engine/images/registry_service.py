"""The engine service for registry pull and push (placeholder until implemented)."""


class RegistryService:
    """Mixin of engine.local.LocalEngine."""

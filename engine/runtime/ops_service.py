"""The engine service for exec, top, stats, pause, cp, diff, export (placeholder until implemented)."""


class ContainerOpsService:
    """Mixin of engine.local.LocalEngine."""

"""Data root, file locks, atomic JSON state and the events journal."""

from engine.store.store import Store

__all__ = ["Store"]

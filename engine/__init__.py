"""The built-in container engine. Callers use `engine.api` only."""

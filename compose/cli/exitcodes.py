"""The only place that maps errors to exit codes and one-line messages."""

from __future__ import annotations


def exit_code_for(exc: BaseException) -> int:
    """Docker Compose v2 exits 1 for every error it reports; so do we."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int):
        return code
    return 1


def message_for(exc: BaseException) -> str:
    """One line for the user; unexpected errors name their type so bugs are reportable."""
    from compose.errors import ComposeError

    text = str(exc).strip()
    if isinstance(exc, ComposeError):
        return text
    module = type(exc).__module__
    if module.startswith("engine"):
        return text or type(exc).__name__
    if isinstance(exc, OSError):
        return f"{exc.strerror or text}" + (f": {exc.filename}" if exc.filename else "")
    return f"internal error ({type(exc).__name__}): {text}; rerun with PYCOMPOSE_DEBUG=1"

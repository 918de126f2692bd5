"""Split a `command:` string into argv as Compose does (go-shellwords without env/backticks).

Quotes and backslashes work as in a POSIX shell; splitting **stops at the first
unquoted shell operator** (`;`, `&`, `|`, `<`, `>`), dropping the rest: the
reference's behaviour (`echo a && echo b` -> `["echo", "a"]`).
"""

from __future__ import annotations

_OPERATORS = ";&|<>"
_SPACES = " \t\r\n"


def split_command(text: str) -> list[str]:
    args: list[str] = []
    buf = ""
    quoted = False
    escaped = single = double = False
    for char in text:
        if escaped:
            buf += char
            escaped = False
            continue
        if char == "\\":
            if single:
                buf += char
            else:
                escaped = True
            continue
        if char in _SPACES and not single and not double:
            if buf or quoted:
                args.append(buf)
            buf, quoted = "", False
            continue
        if char == "'" and not double:
            single = not single
            quoted = True
            continue
        if char == '"' and not single:
            double = not double
            quoted = True
            continue
        if char in _OPERATORS and not single and not double:
            break
        buf += char
    else:
        if escaped or single or double:
            raise ValueError(f"invalid command line string: {text}")
    if buf or quoted:
        args.append(buf)
    return args

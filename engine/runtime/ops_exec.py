"""The caller's side of `exec -it`: raw terminal, byte relay to the pty master, window size.

`relay_pty` puts the caller's terminal (if it is one) in raw mode, copies stdin to the
master and the master to stdout until the process side closes, forwards SIGWINCH as
TIOCSWINSZ, restores the terminal, and returns the exit code of the reaped helper.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import termios
import threading
import tty
from typing import Any

from engine.runtime.nsexec import wait_exit_code


def copy_winsize(src: int, master: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def relay_pty(master: int, helper_pid: int, stdin_fd: int | None, stdout_fd: int) -> int:
    """Relay until the process side of the pty is gone; returns the exec's exit code."""
    term_fd = stdin_fd if stdin_fd is not None and os.isatty(stdin_fd) else None
    saved: list[Any] | None = None
    old_handler: Any = None
    if term_fd is not None:
        saved = termios.tcgetattr(term_fd)
        tty.setraw(term_fd)
    size_src = term_fd if term_fd is not None else (stdout_fd if os.isatty(stdout_fd) else None)
    if size_src is not None:
        copy_winsize(size_src, master)
        if threading.current_thread() is threading.main_thread():
            old_handler = signal.signal(signal.SIGWINCH,
                                        lambda *_: copy_winsize(size_src, master))
    reading_stdin = stdin_fd is not None
    try:
        while True:
            fds = [master] + ([stdin_fd] if reading_stdin and stdin_fd is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.2)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:
                    if exc.errno == errno.EIO:
                        break
                    raise
                if not data:
                    break
                _write_all(stdout_fd, data)
            if stdin_fd is not None and stdin_fd in ready:
                data = os.read(stdin_fd, 65536)
                if data:
                    _write_all(master, data)
                else:
                    reading_stdin = False
                    with contextlib.suppress(OSError):
                        _write_all(master, b"\x04")  # EOF to the process, as a terminal does
            if not ready:
                code = wait_exit_code(helper_pid, os.WNOHANG)
                if code is not None:
                    return code
    finally:
        if saved is not None and term_fd is not None:
            termios.tcsetattr(term_fd, termios.TCSADRAIN, saved)
        if old_handler is not None:
            signal.signal(signal.SIGWINCH, old_handler)
    code = wait_exit_code(helper_pid)
    return 0 if code is None else code

"""`pycompose run` and `container run -it` attached to our stdin, as a user types them."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import BASE_IMAGE, Project, pycompose_command

pytestmark = pytest.mark.root


Step = tuple[bytes, bytes | Callable[[int, subprocess.Popen[bytes]], bytes]]


def drive_terminal(p: Project, args: list[str], steps: list[Step], timeout: float = 30.0,
                   size: tuple[int, int] = (24, 80)) -> tuple[int, str]:
    """Run pycompose on a new pseudo-terminal; for each step wait until the screen shows
    its first part (since the previous step), then type its second (or what a callable
    of the terminal's master and the process returns); (exit code, screen)."""
    master, slave = pty.openpty()
    set_size(master, *size)
    proc = subprocess.Popen([*pycompose_command(), *args], cwd=p.directory, env=p.env,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = b""
    mark = 0
    todo = list(steps)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the command has gone and closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                for _ in range(chunk.count(CURSOR_QUERY)):  # answer as a terminal does
                    os.write(master, b"\x1b[1;5R")
                    # busybox reads 16 bytes at a time and drops what follows the answer
                    # in the same read: let it take the answer alone
                    time.sleep(0.3)
                while todo and todo[0][0] in seen[mark:]:
                    mark = seen.index(todo[0][0], mark) + len(todo[0][0])
                    typed = todo.pop(0)[1]
                    os.write(master, typed if isinstance(typed, bytes) else typed(master, proc))
            elif proc.poll() is not None:
                break
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s; screen: {seen!r}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, seen.decode(errors="replace")


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


CURSOR_QUERY = b"\x1b[6n"  # busybox sh asks where the cursor is after each prompt
PROMPT = b"# " + CURSOR_QUERY  # ready for a line


def test_piped_stdin_without_tty(project: Callable[[str], Project]) -> None:
    p = project("interactive")
    result = p.run("run", "--rm", "-T", "svc", "cat", input="hi\n", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"
    assert p.engine().container_list(all=True) == []  # --rm left nothing


def test_stdin_eof_ends_the_command_and_code_propagates(
        project: Callable[[str], Project]) -> None:
    p = project("interactive")
    result = p.run("run", "--rm", "-T", "svc", "sh", "-c", "wc -l; exit 5",
                   input="a\nb\nc\n", timeout=60)
    assert result.returncode == 5, result.stderr
    assert result.stdout.strip() == "3"
    assert p.engine().container_list(all=True) == []


def test_run_gives_an_interactive_shell_on_a_terminal(
        project: Callable[[str], Project]) -> None:
    p = project("interactive")
    code, shown = drive_terminal(p, ["run", "--rm", "svc", "sh"],
                                 [(PROMPT, b"echo $((6*7)); exit 3\r")])
    assert code == 3, shown
    assert "42" in shown
    assert p.engine().container_list(all=True) == []


def test_ctrl_c_reaches_the_container_on_a_terminal(
        project: Callable[[str], Project]) -> None:
    p = project("interactive")
    began = time.monotonic()
    code, shown = drive_terminal(p, ["run", "--rm", "svc", "sh"], [
        # a child shell: SIGINT kills it whether it is still echoing or already sleeping
        (PROMPT, b"sh -c 'echo ready; exec sleep 100'\r"), (b"ready\r\n", b"\x03"),
        (PROMPT, b"exit 4\r")])
    assert code == 4, shown  # the shell survived: only its foreground job was interrupted
    assert "^C" in shown
    assert time.monotonic() - began < 20
    assert p.engine().container_list(all=True) == []


def test_interrupt_without_terminal_stops_the_one_off(
        project: Callable[[str], Project]) -> None:
    p = project("interactive")
    proc = p.popen("run", "--rm", "-T", "svc", "sh", "-c", "echo up; exec sleep 100")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "up\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert p.engine().container_list(all=True) == []


def test_terminal_size_follows_ours(project: Callable[[str], Project]) -> None:
    p = project("interactive")

    def resize(master: int, proc: subprocess.Popen[bytes]) -> bytes:
        set_size(master, 30, 90)
        proc.send_signal(signal.SIGWINCH)  # what the kernel sends a terminal's foreground
        time.sleep(0.5)
        return b"stty size; exit 0\r"

    code, shown = drive_terminal(p, ["run", "--rm", "svc", "sh"], [
        (PROMPT, b"stty size\r"), (b"20 70\r\n", b""), (PROMPT, resize)], size=(20, 70))
    assert code == 0, shown
    assert "30 90" in shown


def test_container_run_it(project: Callable[[str], Project]) -> None:
    p = project("interactive")
    code, shown = drive_terminal(p, ["container", "run", "--rm", "-it", "--network", "none",
                                     BASE_IMAGE, "sh"], [(PROMPT, b"echo $((6*7)); exit 3\r")])
    assert code == 3, shown
    assert "42" in shown
    assert p.engine().container_list(all=True) == []


def test_container_start_attach_interactive(project: Callable[[str], Project]) -> None:
    p = project("interactive")
    created = p.run("container", "create", "-i", "--network", "none", BASE_IMAGE, "cat",
                    check=True).stdout.strip()
    result = p.run("container", "start", "-a", "-i", created, input="piped\n", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "piped\n"
    p.run("container", "rm", created, check=True)

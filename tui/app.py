"""The dashboard application: one screen of services, logs and actions for a project.

`DashboardApp` holds what the screens share (the data source, the actions, how to run a
shell) and the global keys; `tui.screens.dashboard` does the work.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from textual.app import App
from textual.binding import Binding

from tui.actions import ServiceActions
from tui.data import DashboardSource
from tui.screens.dashboard import REFRESH, DashboardScreen
from tui.screens.help import HelpScreen


def run_in_terminal(argv: list[str]) -> int:
    """Run a command on the terminal the app handed over; its exit code."""
    return subprocess.call(argv)


class DashboardApp(App[int]):
    TITLE = "pycompose"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self, source: DashboardSource, actions: ServiceActions, *,
                 run_shell: Callable[[list[str]], int] = run_in_terminal,
                 refresh: float = REFRESH) -> None:
        super().__init__()
        self.source = source
        self.actions = actions
        self.run_shell = run_shell
        self.refresh_every = refresh
        self.title = f"pycompose · {source.project}"

    def on_mount(self) -> None:
        self.push_screen(DashboardScreen(self.source, self.actions, self.run_shell,
                                         self.refresh_every))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

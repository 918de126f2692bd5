"""The help screen: every key binding of the dashboard, one per line."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("↑ ↓", "select a container / service"),
    ("r", "restart the selected service (pycompose restart SERVICE)"),
    ("s", "stop the selected service (pycompose stop SERVICE)"),
    ("t", "start the selected service (pycompose start SERVICE)"),
    ("b", "rebuild: build and recreate it (pycompose up --build -d SERVICE)"),
    ("e", "open a shell in it (pycompose exec SERVICE sh); exit the shell to come back"),
    ("a", "logs of all services / of the selected service"),
    ("/", "search the logs (Enter keeps the search, Esc clears it)"),
    ("n N", "next / previous match"),
    ("f", "show only the lines that match the search"),
    ("?", "this help"),
    ("q", "quit (the services keep running)"),
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 92; height: auto; border: thick $primary;
                            background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        lines = "\n".join(f"[b]{key:<5}[/b] {what}" for key, what in KEYS)
        with Vertical():
            yield Static("[b]pycompose dashboard[/b]\n\n" + lines, id="help-text")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)

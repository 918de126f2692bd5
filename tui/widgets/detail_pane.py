"""The detail pane: everything known about the selected container, and what the last
action on it printed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.data import ServiceRow


class DetailPane(Static):
    DEFAULT_CSS = """
    DetailPane { width: 42; height: 1fr; padding: 0 1; border: round $secondary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.row: ServiceRow | None = None
        self.last_action = ""

    def show(self, row: ServiceRow | None) -> None:
        self.row = row
        self.update(self.describe())

    def note(self, text: str) -> None:
        """The outcome of the last action, kept under the details."""
        self.last_action = text
        self.update(self.describe())

    def describe(self) -> Text:
        text = Text()
        row = self.row
        if row is None:
            text.append("No service selected", style="dim")
        else:
            fields = [("Service", row.service), ("Container", row.key if row.container
                                                  else "(none)"),
                      ("ID", row.container_id[:12]), ("Image", row.image),
                      ("State", row.state), ("Status", row.status),
                      ("Health", row.health or "-"), ("Ports", row.ports or "-"),
                      ("Restarts", str(row.restarts)), ("CPU", row.cpu_text or "-"),
                      ("Memory", row.memory_text or "-")]
            for i, (name, value) in enumerate(fields):
                text.append(f"{name:<10}", style="bold")
                text.append(value + ("\n" if i < len(fields) - 1 else ""))
        if self.last_action:
            text.append("\n\n" + self.last_action, style="italic")
        return text

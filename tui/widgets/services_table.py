"""The services table: one row per container (or per service without one), updated in
place every poll so the cursor stays on the same container."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from tui.data import ServiceRow

COLUMNS = (("service", "SERVICE"), ("container", "CONTAINER"), ("status", "STATUS"),
           ("health", "HEALTH"), ("ports", "PORTS"), ("cpu", "CPU %"), ("memory", "MEMORY"))
STATE_STYLES = {"running": "green", "exited": "red", "dead": "red", "paused": "yellow",
                "restarting": "yellow", "created": "dim", "not created": "dim"}
HEALTH_SUFFIX = re.compile(r" \((healthy|unhealthy|health: starting)\)$")
HEALTH_STYLES = {"healthy": "green", "unhealthy": "bold red", "starting": "yellow"}


def cells(row: ServiceRow) -> tuple[str | Text, ...]:
    status = HEALTH_SUFFIX.sub("", row.status)  # the HEALTH column says it
    return (row.service, row.container or "-",
            Text(status, style=STATE_STYLES.get(row.state, "")),
            Text(row.health, style=HEALTH_STYLES.get(row.health, "")),
            row.ports, row.cpu_text, row.memory_text)


class ServicesTable(DataTable[str | Text]):
    """Rows keyed by ServiceRow.key; `selected` is the row under the cursor."""

    DEFAULT_CSS = """
    ServicesTable { height: auto; }
    """

    @dataclass
    class Selected(Message):
        """The cursor moved to another row (or the row under it changed)."""

        row: ServiceRow

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_by_key: dict[str, ServiceRow] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def selected(self) -> ServiceRow | None:
        if not self.rows_by_key or self.cursor_row < 0:
            return None
        keys = list(self.rows_by_key)
        return self.rows_by_key[keys[min(self.cursor_row, len(keys) - 1)]]

    def show(self, rows: list[ServiceRow]) -> None:
        """Replace the content with `rows`, keeping the cursor on the same key."""
        before = self.selected
        fresh = {r.key: r for r in rows}
        if list(fresh) == list(self.rows_by_key):
            for r in rows:
                if self.rows_by_key[r.key] != r:
                    for (column, _), value in zip(COLUMNS, cells(r), strict=True):
                        self.update_cell(r.key, column, value, update_width=True)
            self.rows_by_key = fresh
        else:
            self.clear()
            self.rows_by_key = fresh
            for r in rows:
                self.add_row(*cells(r), key=r.key)
            if before is not None:
                keys = list(fresh)
                target = before.key if before.key in fresh else next(
                    (r.key for r in rows if r.service == before.service), None)
                if target is not None:
                    self.move_cursor(row=keys.index(target))
        after = self.selected
        if after is not None and after != before:
            self.post_message(self.Selected(after))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        row = self.rows_by_key.get(str(event.row_key.value))
        if row is not None:
            self.post_message(self.Selected(row))

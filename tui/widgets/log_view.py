"""The log pane: followed lines with search (matches highlighted, `n`/`N` jump between
them) and an optional filter that shows only the matching lines."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import RichLog, Static

MAX_LINES = 5000
MATCH_STYLE = "black on yellow"


class LogView(Vertical):
    """Holds up to MAX_LINES lines; `shown` are those displayed (all, or the matches when
    filtering) and `matches` the indexes into `shown` of lines containing the search
    text (case-insensitive)."""

    DEFAULT_CSS = """
    LogView { height: 1fr; border: round $primary; }
    LogView > RichLog { height: 1fr; }
    LogView > #log-status { height: 1; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []
        self.pattern = ""
        self.filtering = False
        self.shown: list[str] = []
        self.matches: list[int] = []
        self.current = -1  # index into matches of the line last jumped to
        self.source = ""  # what the pane follows, for the status line

    def compose(self) -> ComposeResult:
        yield RichLog(wrap=False, highlight=False, markup=False, max_lines=MAX_LINES,
                      auto_scroll=True, id="log-lines")
        yield Static("", id="log-status")

    @property
    def output(self) -> RichLog:
        return self.query_one(RichLog)

    def follow(self, source: str) -> None:
        """Start over for another source (`web`, or `all services`)."""
        self.source = source
        self.lines.clear()
        self._redraw()

    def _matches(self, line: str) -> bool:
        return not self.pattern or self.pattern.lower() in line.lower()

    def _styled(self, line: str) -> Text:
        text = Text(line)
        if self.pattern:
            text.highlight_words([self.pattern], MATCH_STYLE, case_sensitive=False)
        return text

    def extend(self, lines: list[str]) -> None:
        lines = lines[-MAX_LINES:]
        self.lines.extend(lines)
        del self.lines[:-MAX_LINES]
        for line in lines:
            if self.filtering and not self._matches(line):
                continue
            if self.pattern and self._matches(line):
                self.matches.append(len(self.shown))
            self.shown.append(line)
            self.output.write(self._styled(line))
        excess = len(self.shown) - MAX_LINES
        if excess > 0:  # the RichLog dropped its oldest lines too: shift the indexes
            del self.shown[:excess]
            dropped = sum(1 for i in self.matches if i < excess)
            self.matches = [i - excess for i in self.matches[dropped:]]
            self.current = max(-1, self.current - dropped)
        self._status()

    def search(self, pattern: str) -> None:
        self.pattern = pattern
        self.current = -1
        if not pattern:
            self.filtering = False
            self.output.auto_scroll = True
        self._redraw()

    def toggle_filter(self) -> None:
        self.filtering = not self.filtering and bool(self.pattern)
        self.current = -1
        self._redraw()

    def jump(self, step: int = 1) -> int | None:
        """Scroll to the next (or previous) match; its index in `shown`, if any."""
        if not self.matches:
            self._status()
            return None
        self.current = (self.current + step) % len(self.matches)
        line = self.matches[self.current]
        log = self.output
        log.auto_scroll = False  # stay on the match while new lines arrive
        log.scroll_to(y=max(0, line - log.scrollable_content_region.height // 2),
                      animate=False)
        self._status()
        return line

    def _redraw(self) -> None:
        self.shown = [ln for ln in self.lines if not self.filtering or self._matches(ln)]
        self.matches = [i for i, ln in enumerate(self.shown)
                        if self.pattern and self._matches(ln)]
        log = self.output
        log.clear()
        for line in self.shown:
            log.write(self._styled(line), scroll_end=False)
        if log.auto_scroll:
            log.scroll_end(animate=False, immediate=False)
        self._status()

    def _status(self) -> None:
        parts = [f"logs: {self.source}" if self.source else "logs", f"{len(self.lines)} lines"]
        if self.pattern:
            at = f"{self.current + 1}/" if self.current >= 0 else ""
            parts.append(f"search {self.pattern!r}: {at}{len(self.matches)} matches")
            if self.filtering:
                parts.append("filtered")
        self.query_one("#log-status", Static).update("  ·  ".join(parts))

"""The main screen: the services table on top, the log pane and the detail pane below,
a search box that opens on `/`, and the footer with the keys.

Engine reads and actions run in thread workers and report back with messages; the UI
thread only draws.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from tui.actions import ServiceActions
from tui.data import DashboardSource, LogFollower, ServiceRow
from tui.messages import ActionFinished, LogBatch, LogLines, ServicesUpdated
from tui.widgets.detail_pane import DetailPane
from tui.widgets.log_view import LogView
from tui.widgets.services_table import ServicesTable

REFRESH = 1.0  # seconds between two polls of the engine
ACTION_WORDS = {"restart": "Restarting", "stop": "Stopping", "start": "Starting",
                "rebuild": "Rebuilding"}


class DashboardScreen(Screen[None]):
    DEFAULT_CSS = """
    #services { height: auto; max-height: 45%; }
    #bottom { height: 1fr; }
    #search { dock: bottom; display: none; }
    #search.open { display: block; }
    """
    BINDINGS = [
        Binding("r", "act('restart')", "Restart"),
        Binding("s", "act('stop')", "Stop"),
        Binding("t", "act('start')", "Start"),
        Binding("b", "act('rebuild')", "Rebuild"),
        Binding("e", "shell", "Shell"),
        Binding("a", "toggle_all", "All logs"),
        Binding("slash", "search", "Search"),
        Binding("n", "jump(1)", "Next match"),
        Binding("N", "jump(-1)", "Prev match", show=False),
        Binding("f", "toggle_filter", "Filter"),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    def __init__(self, source: DashboardSource, actions: ServiceActions,
                 run_shell: Callable[[list[str]], int], refresh: float = REFRESH) -> None:
        super().__init__()
        self.source = source
        self.actions = actions
        self.run_shell = run_shell
        self.refresh_every = refresh
        self.follower: LogFollower | None = None
        self.generation = 0  # bumped per follower; stale lines are dropped
        self.all_logs = False
        self.log_target: str | None = ""  # "" nothing yet, None all, else a service
        self.polling = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield ServicesTable(id="services")
        with Horizontal(id="bottom"):
            yield LogView(id="logs")
            yield DetailPane(id="detail")
        yield Input(placeholder="search the logs; Enter keeps it, Esc clears", id="search")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ServicesTable).focus()
        self.poll()
        self.set_interval(self.refresh_every, self.poll)

    def on_unmount(self) -> None:
        if self.follower is not None:
            self.follower.stop()

    # ------------------------------------------------------------------ polling

    def poll(self) -> None:
        if not self.polling:  # a slow engine read must not pile up workers
            self.polling = True
            self.read_rows()

    @work(thread=True, group="poll")
    def read_rows(self) -> None:
        from compose.cli.exitcodes import message_for

        try:
            rows = self.source.rows()
        except Exception as exc:  # shown in the title bar; the next poll tries again
            self.post_message(ServicesUpdated([], message_for(exc)))
            return
        self.post_message(ServicesUpdated(rows))

    def on_services_updated(self, message: ServicesUpdated) -> None:
        self.polling = False
        if message.error:
            self.sub_title = f"engine: {message.error}"
            return
        self.sub_title = f"{len(message.rows)} containers"
        table = self.query_one(ServicesTable)
        table.show(message.rows)
        self.query_one(DetailPane).show(table.selected)
        if self.log_target == "":
            self.follow_logs()

    # ------------------------------------------------------------------ selection and logs

    @property
    def selected(self) -> ServiceRow | None:
        return self.query_one(ServicesTable).selected

    def on_services_table_selected(self, message: ServicesTable.Selected) -> None:
        self.query_one(DetailPane).show(message.row)
        if not self.all_logs:
            self.follow_logs()

    def follow_logs(self) -> None:
        """(Re)start the follower for the selected service, or all with `a`."""
        row = self.selected
        target = None if self.all_logs or row is None else row.service
        if target == self.log_target and self.follower is not None:
            return
        if self.follower is not None:
            self.follower.stop()
        self.generation += 1
        self.log_target = target
        self.query_one(LogView).follow(target or "all services")
        batch = LogBatch(self.generation)

        def deliver(text: str) -> None:
            if batch.add(text):
                self.post_message(LogLines(batch))

        self.follower = LogFollower(self.source.engine, self.source.project, target,
                                    deliver).start()

    def on_log_lines(self, message: LogLines) -> None:
        lines = message.batch.take()
        if message.batch.generation == self.generation:
            self.query_one(LogView).extend(lines)

    def action_toggle_all(self) -> None:
        self.all_logs = not self.all_logs
        self.follow_logs()

    # ------------------------------------------------------------------ search

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("open")
        box.value = self.query_one(LogView).pattern
        box.focus()

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self.query_one(LogView).search(event.value)

    @on(Input.Submitted, "#search")
    def search_submitted(self, event: Input.Submitted) -> None:
        self._close_search()
        self.query_one(LogView).jump(1)

    def action_clear_search(self) -> None:
        self.query_one(LogView).search("")
        self.query_one("#search", Input).value = ""
        self._close_search()

    def _close_search(self) -> None:
        self.query_one("#search", Input).remove_class("open")
        self.query_one(ServicesTable).focus()

    def action_jump(self, step: int) -> None:
        self.query_one(LogView).jump(step)

    def action_toggle_filter(self) -> None:
        self.query_one(LogView).toggle_filter()

    # ------------------------------------------------------------------ actions

    def action_act(self, action: str) -> None:
        row = self.selected
        if row is None:
            self.notify("no service selected", severity="warning")
            return
        self.notify(f"{ACTION_WORDS[action]} {row.service}…")
        self.query_one(DetailPane).note(f"{ACTION_WORDS[action]} {row.service}…")
        self.perform(action, row.service)

    @work(thread=True, group="actions")
    def perform(self, action: str, service: str) -> None:
        from compose.cli.exitcodes import message_for

        try:
            output = getattr(self.actions, action)(service)
        except Exception as exc:  # reported in the UI, never a crash
            self.post_message(ActionFinished(action, service, False, message_for(exc)))
            return
        self.post_message(ActionFinished(action, service, True, output))

    def on_action_finished(self, message: ActionFinished) -> None:
        lines = [ln.strip() for ln in message.output.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        if message.ok:
            text = f"{message.action} {message.service}: done" + (f" ({last})" if last else "")
            self.notify(text)
        else:
            text = f"{message.action} {message.service} failed: {last}"
            self.notify(text, severity="error", timeout=8)
        self.query_one(DetailPane).note(text)
        self.poll()

    def action_shell(self) -> None:
        from textual.app import SuspendNotSupported

        row = self.selected
        if row is None or not row.running:
            self.notify("the selected service is not running", severity="warning")
            return
        argv = self.actions.shell_argv(row.service, row.number or None)
        try:
            with self.app.suspend():
                code = self.run_shell(argv)
        except SuspendNotSupported:
            self.notify("this terminal cannot hand over to a shell", severity="error")
            return
        except OSError as exc:
            self.notify(f"shell failed: {exc}", severity="error")
            return
        self.query_one(DetailPane).note(f"shell in {row.service} exited with code {code}")

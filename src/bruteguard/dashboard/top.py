"""``bruteguard top``: the dashboard's numbers in a terminal, for an SSH session (rich).

Text from attackers (user names, reasons, source names) goes through ``printable`` and is
given to rich as ``Text``, never as console markup, so neither escape sequences nor
``[bold]``-style tags in a user name reach the terminal as anything but characters.
"""

from __future__ import annotations

import time

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from bruteguard.dashboard.snapshot import Snapshot
from bruteguard.safe_text import printable

__all__ = ["frame"]

_TOP = 10


def _t(value: object) -> Text:
    return Text(printable("-" if value is None else str(value)))


def _when(moment: float | None) -> str:
    return "-" if moment is None else time.strftime("%H:%M:%S", time.localtime(moment))


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "no line yet"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _table(title: str, *columns: str) -> Table:
    table = Table(
        title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def frame(snapshot: Snapshot, host: str) -> RenderableType:
    """One screen: the header, then bans, jails, sources, attackers and users."""
    header = Text.assemble(
        ("bruteguard top", "bold"),
        f" on {printable(host)} at {_when(snapshot.now)} · ",
        (f"{snapshot.active} active bans", "bold red" if snapshot.active else "bold"),
        " · daemon: ",
        _t(snapshot.daemon),
    )
    jails = _table("Jails", "jail", "failures/min", "last hour", "banned now")
    for jail in snapshot.jails:
        jails.add_row(_t(jail.jail), f"{jail.per_minute:.1f}", str(jail.last_hour),
                      str(jail.banned_now))  # fmt: skip
    sources = _table("Sources", "jail", "source", "lines", "newest line", "unread")
    for source in snapshot.sources:
        sources.add_row(
            _t(source.jail),
            _t(source.source),
            Text("NOT READING", "bold red") if not source.reading else _t(source.lines),
            _ago(source.lag),
            "-" if source.behind is None else f"{source.behind:,} bytes",
        )
    active = _table("Active bans (newest)", "target", "jail", "until", "failures", "why")
    for ban in snapshot.bans[:_TOP]:
        active.add_row(_t(ban["ip"]), _t(ban["jail"]), _when(ban["until"]),
                       str(ban["failures"]), _t(ban["reason"]))  # fmt: skip
    recent = _table("Recent bans (24 h)", "target", "jail", "start", "lifted")
    for ban in snapshot.recent[:_TOP]:
        recent.add_row(_t(ban["ip"]), _t(ban["jail"]), _when(ban["start"]), _when(ban["lifted"]))
    attackers = _table("Top attackers (last hour)", "address", "failures", "last", "jails")
    for attacker in snapshot.attackers[:_TOP]:
        attackers.add_row(_t(attacker.ip), str(attacker.failures), _when(attacker.last),
                          _t(attacker.jails))  # fmt: skip
    users = _table("Users tried (last hour)", "user", "tries")
    for user, count in snapshot.users[:_TOP]:
        users.add_row(_t(user), str(count))
    # Two columns: what is banned on the left, where it comes from on the right.
    layout = Table.grid(padding=(0, 3))
    layout.add_row(Group(jails, active, recent), Group(attackers, users, sources))
    return Group(header, layout)

"""The dashboard's two HTML pages. They carry no inline script or style (the
Content-Security-Policy forbids both): the live view is drawn by ``static/dashboard.js``
from JSON, with ``textContent`` only, so no text from a log line ever becomes markup."""

from __future__ import annotations

import html

__all__ = ["CSP", "PLOTS", "dashboard_page", "login_page"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Plots, by the name under /plots/NAME.svg, in the order shown.
PLOTS = (
    "attempts",
    "bans",
    "addresses",
    "networks",
    "owners",
    "countries",
    "asns",
    "users",
    "steps",
    "cases",
)

_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="/static/dashboard.css">
{extra}</head>
"""


def login_page(host: str, error: str = "") -> str:
    """The login form: one secret, the password or the token."""
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return (
        _HEAD.format(title=f"bruteguard on {html.escape(host)}: log in", extra="")
        + '<body class="login"><main><h1>bruteguard</h1>'
        f"<p>on {html.escape(host)}</p>{message}"
        '<form method="post" action="/login">'
        '<label for="secret">Password or token</label>'
        '<input id="secret" name="secret" type="password" autocomplete="current-password"'
        " required autofocus>"
        '<button type="submit">Log in</button></form></main></body></html>'
    )


# The live view's tables: (element id, title, column headers); dashboard.js fills them.
_TABLES = (
    ("bans", "Active bans", ("Target", "Jail", "Until", "Failures", "Step", "Why", "From", "")),
    ("jails", "Jails", ("Jail", "Failures/min", "Last hour", "Banned now")),
    ("sources", "Sources", ("Jail", "Source", "Lines", "Newest line", "Unread")),
    ("attackers", "Top attackers (last hour)", ("Address", "Failures", "Last", "Jails", "")),
    ("users", "Users tried (last hour)", ("User", "Tries")),
    ("failures", "Latest failures", ("Time", "Address", "Jail", "User")),
    ("recent", "Bans of the last 24 h", ("Target", "Jail", "Start", "Until", "Lifted", "Why")),
    ("cases", "Abuse desk", ("Case", "Kind", "State", "Contact", "Addresses", "Opened", "")),
    ("fleet", "Fleet bans", ("Target", "Host", "Jail", "Until", "Why")),
)


def _table(ident: str, title: str, headers: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in headers)
    return (
        f'<section id="{ident}-section"><h2>{html.escape(title)}</h2><table id="{ident}">'
        f"<thead><tr>{head}</tr></thead><tbody></tbody></table></section>"
    )


def dashboard_page(host: str, csrf: str) -> str:
    """The live view's frame: the tables are filled and refreshed by dashboard.js."""
    plots = "".join(
        f'<img class="plot" data-plot="{name}" alt="{name}" src="/plots/{name}.svg">'
        for name in PLOTS
    )
    head = _HEAD.format(
        title=f"bruteguard on {html.escape(host)}",
        extra=f'<meta name="csrf-token" content="{html.escape(csrf)}">\n'
        '<script src="/static/dashboard.js" defer></script>\n',
    )
    return (
        head + f"<body><header><h1>bruteguard on {html.escape(host)}</h1>"
        '<p><span id="daemon">connecting</span> · <b id="active">-</b> active bans'
        ' · updated <span id="updated">-</span></p>'
        '<form method="post" action="/logout" id="logout">'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">'
        '<button type="submit">Log out</button></form></header>'
        '<p id="message" role="status"></p>'
        '<form id="ban-form"><label>Ban <input name="ip" placeholder="address or network"'
        ' required></label> <label>jail <input name="jail" placeholder="first jail"></label>'
        ' <label>for <input name="for" placeholder="jail bantime"></label>'
        ' <button type="submit">Ban</button></form>'
        + "".join(_table(*table) for table in _TABLES)
        + f'<section><h2>Plots (7 days)</h2><div id="plots">{plots}</div></section>'
        "</body></html>"
    )

"""Grafana: failed logins to the login form (grafana.log, journal), Grafana 6 to 11.

Grafana logs in logfmt (``pkg/infra/log``): ``key=value`` pairs, a value quoted when it
holds a space, ``=`` or ``"``, with ``"`` and ``\\`` escaped inside the quotes — so client
text inside a value can never end it early or write a key of its own. The stamp is the
``t=`` pair: first on the line up to Grafana 8 (log15: ``t=… lvl=eror msg=… logger=context
userId=0 orgId=0 uname= …``), after the logger's context pairs from Grafana 9 on
(``logger=context userId=0 orgId=0 uname= t=… level=info msg=…``).

A failed form login (``POST /login``) writes two lines, in this order:

* **invalid-login** (announce) — ``pkg/api/response/response.go`` ``WriteTo`` for the error
  response: ``msg="Invalid username or password" error=… remote_addr=ADDR traceID=…``
  (the legacy login, up to Grafana 9), and since the authn service (Grafana 10) the
  ``errutil`` reason as the message: ``msg=Unauthorized error="[password-auth.failed] …"
  remote_addr=ADDR``.
* **login-401** (confirm) — ``pkg/middleware/loggermw/logger.go``: every request not
  answered 200/304 is logged, ``router_logging`` or not: ``msg="Request Completed"
  method=POST path=/login status=401 remote_addr=ADDR time_ms=…``.

Both are one attempt (announce, then its verdict); where only one of them is written (old
releases without the request log, or log filters), it counts alone.

**Who chooses the address.** ``remote_addr`` is ``web.Context.RemoteAddr()``
(``pkg/web/context.go``): the ``X-Real-IP`` header if present, else the first
``X-Forwarded-For`` entry, else the connection's address — the headers are taken from
*any* client (only checked to parse as an IP since Grafana 8.3). A client that talks to
Grafana directly can name any address it likes, an innocent's included. The jail is
therefore **off by default**: turn it on only where Grafana is reached solely through a
reverse proxy that *sets* ``X-Real-IP`` to the client's address (nginx: ``proxy_set_header
X-Real-IP $remote_addr;``) and Grafana's own port is not reachable from outside
(``http_addr = 127.0.0.1``). Then the value is the proxy's word, not the client's.

Not counted: ``Failed to authenticate request`` (``authn.service``) lines — with
``client=auth.client.session`` they are a browser's expired cookie, and they carry no
address; the same request's ``Request Completed`` line counts instead. A ``GET /login``
answered 200 is the form itself.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["FRAME", "PROGRAMS", "SIGNATURES", "SYSLOG_SIGNATURES"]

PROGRAMS = ("grafana", "grafana-server")

# A logfmt value: quoted (escapes inside) or bare.
_VALUE = r'(?:"(?:[^"\\\n]++|\\.)*+"|[^\s"]*+)'
# Pairs before the one a signature looks for: "key=value " (keys are Grafana's).
_PAIRS = rf"(?:[A-Za-z_][\w.-]{{0,63}}={_VALUE} )*?"
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"

# grafana.log: the t= pair is the stamp, wherever the logger put it.
FRAME = Frame(
    "grafana",
    rf"(?=(?:logger|t)=)(?={_PAIRS}t=({_TIME}) )",
    Stamp.SYSLOG,
    example="logger=context userId=0 orgId=0 uname= t=2026-11-23T06:50:01.123456789Z ",
)

# remote_addr: an address (IPv6 from a connection keeps its brackets), then the next pair.
_ADDR = r"remote_addr=(?=\[?[0-9A-Fa-f:.]{2,45}\]?(?: |$))<HOST>(?: .*)?"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "invalid-login",
        Role.ANNOUNCE,
        rf'{_PAIRS}msg=(?:"Invalid username or password"|Unauthorized(?= error="\[password-auth\.))'
        rf" {_PAIRS}{_ADDR}",
        (
            'level=info msg="Invalid username or password" error="invalid username or'
            ' password" remote_addr=198.51.100.7 traceID=',
            'level=info msg=Unauthorized error="[password-auth.failed] failed to authenticate'
            ' identity: [identity.not-found] no user found: user not found"'
            " remote_addr=2001:db8::7 traceID=",
        ),
    ),
    Signature(
        "login-401",
        Role.CONFIRM,
        rf'{_PAIRS}msg="Request Completed" method=POST path=(?:/[\w.~-]{{1,64}}){{0,4}}/login'
        rf" status=401 {_ADDR}",
        (
            'level=info msg="Request Completed" method=POST path=/login status=401'
            " remote_addr=198.51.100.7 time_ms=92 duration=92.1ms size=42 referer="
            " handler=/login status_source=server",
            'level=info msg="Request Completed" method=POST path=/grafana/login status=401'
            " remote_addr=[2001:db8::7] time_ms=3 duration=3.2ms size=42 referer=",
        ),
    ),
)

# Under the journal: "grafana[PID]: logger=context … t=… level=… msg=…" (the syslog
# frame's stamp is the line's; the message is matched from its first pair).
SYSLOG_SIGNATURES: tuple[Signature, ...] = SIGNATURES

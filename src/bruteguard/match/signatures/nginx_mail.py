"""nginx's mail proxy (ngx_mail_module, nginx 1.22): logins its ``auth_http`` server refused.

nginx proxies IMAP, POP3 and SMTP and asks an HTTP auth server about every login
(``auth_http``). When the answer refuses the login (``Auth-Status`` other than ``OK``),
``ngx_mail_auth_http_process_headers`` (src/mail/ngx_mail_auth_http_module.c) writes, at
level **info**, into the mail context's error log (frame ``NGINX_ERROR``)::

    *N client login failed: "ERRMSG" while in http auth state, client: ADDR,
        server: LOCAL:PORT, login: "LOGIN"

(one line). The tail is ``ngx_mail_log_error`` (src/mail/ngx_mail_handler.c): `` while
ACTION`` (nginx's), ``, client: ADDR`` — ``c->addr_text``, the connection's address
(IPv6 without brackets) —, `` using starttls`` when the session did, ``, server: LOCAL:PORT``
(the listening address), and ``, login: "LOGIN"`` — the user name the client sent, raw:
any byte but a line break, quotes included. ERRMSG is the auth server's ``Auth-Status``
text (the administrator's program: ``Invalid login or password``).

The address is taken right after the first ``" while in http auth state, client: `` that
follows an ERRMSG without a quote: the client's LOGIN comes *after* the address, so nothing
it sends can stand in front of it. (An auth server that echoed the client's login into
``Auth-Status`` would hand the client the text before the address: don't.) Checked against
real nginx 1.22.1 (Debian 12, libnginx-mod-mail) lines, IMAP and POP3, on a lab network.

Every refused login is one line (a client trying several logins on one connection writes
one line each): role CONFIRM. Being at level info, the line is written only where the
error log's level is ``info`` (``error_log /var/log/nginx/error.log info;`` in the
``mail`` block or above); Debian's default level, ``error``, writes none. Not counted:
``client … connected to …`` (info, every connection), ``auth http server … did not send
…`` and the other ``auth http`` errors (the auth server's trouble), ``client sent invalid
command`` and other protocol errors (not logins).
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["SIGNATURES"]

_ADDR = r"[0-9A-Fa-f:.]{2,45}"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "login-failed",
        Role.CONFIRM,
        r'client login failed: "[^"\n]{0,1024}" while in http auth state,'
        rf" client: (?={_ADDR}(?: using starttls)?, server: )<HOST>(?: using starttls)?,"
        r' server: \S{1,300}(?:, login: "<USER>")?',
        (
            'client login failed: "Invalid login or password" while in http auth state,'
            ' client: 198.51.100.7, server: 0.0.0.0:143, login: "bob"',
            'client login failed: "Invalid login or password" while in http auth state,'
            ' client: 2001:db8::66, server: [::]:110, login: "admin"',
            'client login failed: "Authentication failed" while in http auth state,'
            ' client: 198.51.100.7 using starttls, server: 192.0.2.1:587, login: "x"',
        ),
    ),
)

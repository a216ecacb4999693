"""Web vulnerability scanners: requests for well-known probe paths answered 404 (access logs).

Scanners (and the bots that follow a CVE announcement) ask every host for the same few
hundred paths: version-control and environment files (``/.git/config``, ``/.env``), database
front ends (``/phpmyadmin/``), WordPress files on hosts without WordPress, router and
appliance CGI (``/cgi-bin/…``, ``/boaform/…``, ``/HNAP1``), Java and PHP framework consoles
(``/actuator/…``, ``/vendor/phpunit/…``, ``/_ignition/…``), web shells and backups
(``/shell.php``, ``/backup.zip``). One such request answered **404** (or nginx's **444**,
"close without answering") counts once; any other answer is not counted (a path that
exists is the site's own business; 401/403 are the flood jails').

The list is this project's own, written from what scanners request in the wild; a path is
matched as a whole path segment, after at most three segments of any directory
(``/laravel/.env``, ``/blog/wp-login.php``), and followed by nothing or by ``/``, ``?``,
``.`` or ``~`` (``/.git/HEAD``, ``/.env.bak``, ``/wp-config.php~``). Names that a real site
may well have and a person may mistype (``/admin``, ``/login``, ``/api``) are not on it.

The jail wants **6** such 404s within **10 minutes** before it bans: a scanner sends
dozens a second, a person who follows a stale link or mistypes reaches one or two.

The request is the first quoted field (nginx writes a client's ``"`` as ``\\x22``, Apache
as ``\\"``) and the status is the field after it: the server's. The status is checked
first (a look-ahead over the request), so a request answered 200 — most lines — costs one
scan of its request.

**nginx's error log** (``ERROR_SIGNATURES``, frame ``NGINX_ERROR``) has the same 404s for
a setup that reads it instead of the access log (read one of the two: each probe is in
both): ``ngx_http_static_module``'s ``open() "FILE" failed (2: No such file or
directory)`` and ``ngx_http_index_module``'s ``"DIR" is not found (2: …)`` (both answer
404, at level ``error`` while ``log_not_found`` is on, the default), then ``, client:
ADDR, server: NAME, request: "REQUEST"``. FILE is the document root and the decoded URI,
written raw, so it could hold any text: it is accepted only without a ``"`` or a blank, so
the first ``", client: `` after it is nginx's own and the address the one nginx wrote. The
probe list is checked on the request line, which nginx writes right after the server name
(the administrator's).
"""

from bruteguard.match.signature import Role, Signature
from bruteguard.match.signatures.frames import access_request

__all__ = ["ERROR_SIGNATURES", "SIGNATURES"]

_PROBE = (
    r"(?:"
    # version control, environment, editor and credential files
    r"\.(?:env|git|svn|hg|bzr|DS_Store|aws|ssh|docker|vscode|idea|npmrc|htpasswd"
    r"|bash_history|git-credentials|sftp-config\.json)"
    # database front ends
    r"|(?i:php[-_]?my[-_]?admin[\w.-]{0,12}|pma|myadmin|mysqladmin|sqladmin|dbadmin"
    r"|adminer(?:[-\w.]{0,16})?\.php|sqlite(?:manager)?|phpliteadmin\.php)"
    # WordPress where there is none (404); under its directories not a page's static asset
    # (a site that runs WordPress may miss a plugin's stylesheet: its visitors never count)
    r"|wp-login\.php|xmlrpc\.php|wp-config\.php"
    r"|wp-(?:admin|includes|content)(?![^\s\"\\?]*\.(?i:css|js|map|png|jpe?g|gif|svg|webp|avif"
    r"|ico|bmp|woff2?|ttf|eot|otf|mp4|webm|mp3)(?:\?[^\s\"\\]*)? HTTP/)"
    r"|wlwmanifest\.xml"
    # appliance and router CGI, remote-access gateways
    r"|cgi-bin|boaform|HNAP1|GponForm|setup\.cgi|\+CSCOE\+|owa|ecp|autodiscover"
    # webmail where there is none: its directory or index page alone (a site that has it
    # may miss an asset under it, and its users must never count)
    r"|roundcube(?:mail)?/?(?:index\.php)?(?=(?:\?[^\s\"\\]*)? HTTP/)"
    # framework consoles and debug endpoints
    r"|actuator|vendor/phpunit|phpunit|_ignition|telescope|solr|jmx-console"
    r"|manager/html|invoker|druid|debug/default|api/jsonws"
    # web shells, probes and backups
    r"|(?:phpinfo|eval-stdin|shell|wso|c99|r57|alfa|xleet)\.php"
    r"|(?:backup|backups|dump|db|database|site|www|wwwroot|web|htdocs)"
    r"\.(?:sql|zip|rar|7z|tar|tar\.gz|tgz|bak)"
    r"|(?:wp-config|config|configuration|settings|local)\.php(?:\.bak|\.old|\.save|\.orig"
    r"|\.swp|\.txt|~)"
    r")"
)
# Up to three directories; an empty one too ("//pma/…": scanners double the slash).
_DIRS = r'(?:/[^\s"\\/?]{0,64}){0,3}'
_AFTER = r'(?:[/?.~][^\s"\\]*)?'
# The request's end and the status, looked at before the path is tried.
_STATUS_FIRST = r'(?=(?:[^"\\\n]++|\\.)*+" (?:404|444) )'

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "probe-404",
        Role.CONFIRM,
        access_request(
            rf"{_STATUS_FIRST}[A-Z]{{3,10}} {_DIRS}/{_PROBE}{_AFTER} HTTP/[0-9.]{{1,3}}",
            "(?:404|444)",
        ),
        (
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "GET /.env HTTP/1.1" 404 153 "-"'
            ' "Mozilla/5.0"',
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "GET /.git/config HTTP/1.1" 404'
            ' 153 "-" "-"',
            '2001:db8::7 - - [23/Nov/2026:06:50:01 +0100] "GET /phpMyAdmin/index.php HTTP/1.1"'
            ' 404 153 "-" "-"',
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "POST /cgi-bin/luci/;stok=/locale'
            ' HTTP/1.1" 404 153 "-" "-"',
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "GET /laravel/.env HTTP/1.1" 444 0'
            ' "-" "-"',
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "GET /wp-login.php HTTP/1.1" 404'
            ' 153 "-" "-"',
        ),
    ),
)

# nginx's error log: a static file or index directory not found (404), its FILE without a
# '"' or a blank, so the client field after it is nginx's; the probe is read in the request.
ERROR_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "probe-not-found",
        Role.CONFIRM,
        r'(?:open\(\) "[^"\s]{1,4096}+" failed|"[^"\s]{1,4096}+" is not found)'
        r" \((?:2: No such file or directory|20: Not a directory)\), client: "
        r"(?=[0-9A-Fa-f:.]{2,45}, server: )<HOST>, server: [^\s,]{0,255}, request: "
        rf'"[A-Z]{{3,10}} {_DIRS}/{_PROBE}{_AFTER} HTTP/[0-9.]{{1,3}}"(?:, .*)?',
        (
            'open() "/var/www/html/.env" failed (2: No such file or directory), client:'
            ' 198.51.100.7, server: example.org, request: "GET /.env HTTP/1.1", host:'
            ' "example.org"',
            '"/var/www/html/phpmyadmin/" is not found (2: No such file or directory), client:'
            ' 2001:db8::7, server: _, request: "GET /phpmyadmin/ HTTP/1.1", host: "203.0.113.1"',
        ),
    ),
)

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
"""

from bruteguard.match.signature import Role, Signature
from bruteguard.match.signatures.frames import access_request

__all__ = ["SIGNATURES"]

_PROBE = (
    r"(?:"
    # version control, environment, editor and credential files
    r"\.(?:env|git|svn|hg|bzr|DS_Store|aws|ssh|docker|vscode|idea|npmrc|htpasswd"
    r"|bash_history|git-credentials|sftp-config\.json)"
    # database front ends
    r"|(?i:php[-_]?my[-_]?admin[\w.-]{0,12}|pma|myadmin|mysqladmin|sqladmin|dbadmin"
    r"|adminer(?:[-\w.]{0,16})?\.php|sqlite(?:manager)?|phpliteadmin\.php)"
    # WordPress where there is none (404)
    r"|wp-login\.php|wp-admin|wp-includes|wp-content|xmlrpc\.php|wp-config\.php"
    r"|wlwmanifest\.xml"
    # appliance and router CGI, remote-access gateways
    r"|cgi-bin|boaform|HNAP1|GponForm|setup\.cgi|\+CSCOE\+|owa|ecp|autodiscover"
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
_DIRS = r'(?:/[^\s"\\/?]{1,64}){0,3}'
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

"""GitLab: failed sign-ins (application_json.log) and Rack::Attack throttles (auth_json.log).

GitLab's JSON loggers (``lib/gitlab/json_logger.rb``) write one JSON object per line, keys
in the order they were set: ``severity``, ``time`` (``iso8601(3)``, UTC), then
``correlation_id`` (GitLab 12.5 on), then the message — a string as ``"message"``, or a
hash merged in key by key. Every string value is JSON-escaped (``"`` as ``\\"``, control
characters as ``\\uXXXX``/``\\n``), so client text can never close a string early, start a
new key or break the line.

* **failed-login** — ``app/controllers/sessions_controller.rb`` ``log_failed_login``:
  ``Gitlab::AppLogger.info("Failed Login: username=#{user_params[:login]}
  ip=#{request.remote_ip}")`` → ``application_json.log``:
  ``{"severity":"INFO","time":"…","correlation_id":"…","message":"Failed Login:
  username=NAME ip=ADDR"}``. NAME is the client's (the login field) and comes *before* the
  address; the address ends the message string. A name may hold `` ip=203.0.113.9``, but
  not a raw ``"``: the real address is the last `` ip=…`` right before the string's closing
  quote, which ends the object.
* **rack-attack** — ``lib/gitlab/auth_logger.rb`` via the Rack::Attack subscriber
  (``lib/gitlab/rack_attack/request.rb``): ``{"severity":"ERROR","time":"…",
  "correlation_id":"…","message":"Rack_Attack","env":"throttle","remote_ip":"ADDR",
  "request_method":"POST","path":"/users/sign_in",…}`` in ``auth_json.log``, one line per
  request Rack::Attack throttled (``env`` ``throttle``) or blocked (``blocklist``: the
  git-over-HTTP and container-registry failed-auth ban). ``remote_ip`` comes right after
  ``env``, before every client-controlled key (``path``, ``meta.user``…): it is matched at
  that fixed place, never searched for.

The address is Rails' ``request.remote_ip`` (Rack::Attack's ``req.ip``): the connection's
address, or the right-most ``X-Forwarded-For`` entry that is not a trusted proxy (GitLab's
bundled nginx appends the real client; ``gitlab_rails['trusted_proxies']`` lists the
others). A client on a network Rails trusts by default (loopback, RFC 1918, fc00::/7) can
choose the address it is logged under: put such networks in ``ignoreip``.

Not read: the text ``application.log`` (``Gitlab::AppTextLogger``: ``TIME: MESSAGE``, the
message as it is), where a login name holding a line break writes a whole forged line.

Not counted: ``"env":"track"`` (Rack::Attack's dry-run mode), the per-request
``production_json.log`` (a failed sign-in is a ``POST /users/sign_in`` answered 200, a
success 302, with no failure field), ``Successful Login`` and ``User Logout``.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["JSON", "SIGNATURES"]

# {"severity":"INFO","time":"2026-11-23T06:50:01.123Z", then correlation_id and any other
# keys GitLab sets before the message (server values, JSON strings: escaped).
JSON = Frame(
    "gitlab-json",
    r'\{"severity":"(?:DEBUG|INFO|WARN|ERROR|FATAL|UNKNOWN|ANY)",'
    r'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?)",'
    r'(?:"[A-Za-z_.]{1,64}":"(?:[^"\\\n]++|\\.)*+",){0,8}?',
    Stamp.SYSLOG,
    example='{"severity":"INFO","time":"2026-11-23T06:50:01.123Z","correlation_id":"01HF8Z5Q9W3K",',
)

_IP = r"(?=[0-9A-Fa-f:.]{2,45}\")<HOST>"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "failed-login",
        Role.CONFIRM,
        # The message closes at the first raw '"', which the client cannot write.
        rf'"message":"Failed Login: username=<USER> ip={_IP}"\}}',
        (
            '"message":"Failed Login: username=root ip=198.51.100.7"}',
            '"message":"Failed Login: username=admin@example.org ip=2001:db8::7"}',
        ),
    ),
    Signature(
        "rack-attack",
        Role.CONFIRM,
        r'"message":"Rack_Attack","env":"(?:throttle|blocklist)","remote_ip":"'
        r'(?=[0-9A-Fa-f:.]{2,45}")(?U:<HOST>)",.*\}',
        (
            '"message":"Rack_Attack","env":"throttle","remote_ip":"198.51.100.7",'
            '"request_method":"POST","path":"/users/sign_in","matched":"throttle_unauthenticated_web"}',
            '"message":"Rack_Attack","env":"blocklist","remote_ip":"2001:db8::7",'
            '"request_method":"GET","path":"/group/project.git/info/refs?service=git-upload-pack"}',
        ),
    ),
)

"""``bruteguard dashboard``: the web UI, served by aiohttp (the ``dashboard`` extra).

What it guards, and how:

- Login: a password (scrypt hash in the config) or a token (from a root-only file),
  checked in constant time; failed logins are bounded per minute. The session cookie is
  ``HttpOnly``, ``SameSite=Strict`` (and ``Secure`` over TLS).
- Actions (ban, unban, send a draft complaint) are POSTs of JSON carrying the session's
  CSRF token in ``X-CSRF-Token``; without it, or from another origin: 403, nothing done.
  They go through the daemon's control socket (``ban``/``unban``, the path of ``bruteguard
  ban``) and the abuse desk's ``send_now`` (the path of ``bruteguard abuse send``).
- DNS rebinding: on a loopback address, a request whose ``Host`` is not a loopback address
  or ``localhost`` (a page of another site whose name was pointed at 127.0.0.1) gets 421.
- Attacker text: pages hold no data; the script fills tables with ``textContent``; the
  plots are SVG images whose labels ``insight.plots`` escapes; every response carries a
  strict Content-Security-Policy (no inline script or style) and ``nosniff``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from bruteguard.bounds import split_listen
from bruteguard.config import Config
from bruteguard.control import request as control_request
from bruteguard.dashboard.auth import Login, Session, Sessions
from bruteguard.dashboard.pages import CSP, PLOTS, dashboard_page, login_page
from bruteguard.dashboard.snapshot import Snapshots
from bruteguard.duration import parse_duration
from bruteguard.errors import BruteguardError

__all__ = ["Dashboard", "serve"]

log = logging.getLogger("bruteguard.dashboard")

COOKIE = "bruteguard_session"
_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
_PLOT_CSP = "default-src 'none'; style-src 'unsafe-inline'"
# Seconds a set of plots is reused: a summary reads a week of the ledger (at a million
# failures, 10-25 s on a busy machine), so the live tables never wait for it (own lock).
_PLOTS_TTL = 300.0
_PLOT_SPAN = 7 * 86400.0
_MAX_BODY = 64 * 1024
_MAX_FIELD = 200  # characters of an address, jail, duration or case id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Refused(Exception):
    """An action refused before anything was done: its HTTP status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Dashboard:
    """The dashboard's state: sessions, the latest snapshot and plots (shared by every
    browser, so ten open tabs cost the ledger one read a refresh)."""

    def __init__(self, config: Config, login: Login) -> None:
        self.config = config
        self.settings = config.dashboard
        self.login = login
        self.sessions = Sessions(self.settings.session_ttl)
        self.host = socket.gethostname()
        self._static = {
            name: (resources.files("bruteguard.dashboard") / "static" / name).read_bytes()
            for name in _STATIC
        }
        self._snapshots = Snapshots(config)
        self._snapshot: tuple[float, bytes] | None = None
        self._plots: tuple[float, dict[str, str]] | None = None
        self._lock = asyncio.Lock()
        self._plots_lock = asyncio.Lock()
        self._scrypt = asyncio.Semaphore(2)  # 32 MiB each: logins hash two at a time
        self._loopback = ipaddress.ip_address(split_listen(self.settings.listen)[0]).is_loopback

    def app(self) -> web.Application:
        middlewares = [self._loopback_host] if self._loopback else []
        app = web.Application(client_max_size=_MAX_BODY, middlewares=middlewares)
        app.on_response_prepare.append(self._headers)
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/login", self.login_form),
                web.post("/login", self.log_in),
                web.post("/logout", self.log_out),
                web.get("/static/{name}", self.static),
                web.get("/api/state", self._session_only(self.state)),
                web.get("/events", self._session_only(self.events)),
                web.get("/plots/{name}.svg", self._session_only(self.plot)),
                web.post("/api/ban", self._action(self.ban)),
                web.post("/api/unban", self._action(self.unban)),
                web.post("/api/send", self._action(self.send)),
            ]
        )
        return app

    # -- guards ------------------------------------------------------------------------

    @web.middleware
    async def _loopback_host(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _loopback_name(request.host):
            return web.Response(text="this dashboard answers on its loopback address", status=421)
        return await handler(request)

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers.setdefault("Cache-Control", "no-store")
        headers["Server"] = "bruteguard"
        if self.settings.tls:
            headers["Strict-Transport-Security"] = "max-age=31536000"

    def _session(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def _session_only(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if self._session(request) is None:
                return web.json_response({"error": "log in first"}, status=401)
            return await handler(request)

        return guarded

    def _action(self, handler: Callable[[dict[str, Any]], Awaitable[Any]]) -> Handler:
        """A POST that changes something: session, same origin, CSRF token, a JSON object."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                await self._checked(request, request.headers.get("X-CSRF-Token"))
                if request.content_type != "application/json":
                    raise _Refused(415, "an action is a JSON object")
                try:
                    fields = msgspec.json.decode(await request.read())
                except msgspec.DecodeError:
                    raise _Refused(400, "an action is a JSON object") from None
                if not isinstance(fields, dict):
                    raise _Refused(400, "an action is a JSON object")
                result = await handler(fields)
            except _Refused as refused:
                return web.json_response({"error": str(refused)}, status=refused.status)
            except BruteguardError as error:
                return web.json_response({"error": str(error)}, status=502)
            self._snapshot = None  # the next push shows what the action changed
            self._snapshots.forget()
            return web.json_response({"ok": True, "result": result})

        return guarded

    async def _checked(self, request: web.Request, token: str | None) -> Session:
        session = self._session(request)
        if session is None:
            raise _Refused(401, "log in first")
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise _Refused(403, "refused: the request came from another site")
        if not self.sessions.csrf_ok(session, token):
            raise _Refused(403, "refused: no valid CSRF token (reload the page)")
        return session

    # -- pages -------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            raise web.HTTPSeeOther("/login")
        return web.Response(text=dashboard_page(self.host, session.csrf), content_type="text/html")

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        if self._session(request) is not None:
            raise web.HTTPSeeOther("/")
        return web.Response(text=login_page(self.host), content_type="text/html")

    async def log_in(self, request: web.Request) -> web.StreamResponse:
        if self.sessions.throttled():
            page = login_page(self.host, "Too many failed logins: wait a minute.")
            return web.Response(text=page, content_type="text/html", status=429)
        secret = str((await request.post()).get("secret", ""))[:1024]
        async with self._scrypt:
            accepted = await asyncio.to_thread(self.login.accepts, secret)
        if not accepted:
            self.sessions.failed()
            log.warning("dashboard: failed login from %s", request.remote)
            page = login_page(self.host, "Wrong password or token.")
            return web.Response(text=page, content_type="text/html", status=401)
        key, _session = self.sessions.open()
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE,
            key,
            httponly=True,
            samesite="Strict",
            secure=self.settings.tls,
            path="/",
            max_age=int(self.settings.session_ttl),
        )
        raise response

    async def log_out(self, request: web.Request) -> web.StreamResponse:
        try:
            await self._checked(request, str((await request.post()).get("csrf", "")))
        except _Refused as refused:
            return web.json_response({"error": str(refused)}, status=refused.status)
        self.sessions.close(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(
            body=self._static[name],
            content_type=_STATIC[name],
            headers={"Cache-Control": "no-cache"},
        )

    # -- the live view ---------------------------------------------------------------

    async def snapshot(self) -> bytes:
        async with self._lock:
            cached = self._snapshot
            pause = self._snapshots.pause(self.settings.refresh)
            if cached is not None and time.monotonic() - cached[0] < pause:
                return cached[1]
            taken = await asyncio.to_thread(self._snapshots.take, time.time())
            data = msgspec.json.encode(taken)
            self._snapshot = (time.monotonic(), data)
            return data

    async def state(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=await self.snapshot(), content_type="application/json")

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: a snapshot every ``refresh`` while the session lasts."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        while self._session(request) is not None:
            try:
                await response.write(b"data: " + await self.snapshot() + b"\n\n")
            except ConnectionResetError:  # the page was closed
                break
            await asyncio.sleep(self._snapshots.pause(self.settings.refresh))
        return response

    async def plot(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in PLOTS:
            raise web.HTTPNotFound()
        async with self._plots_lock:
            cached = self._plots
            if cached is None or time.monotonic() - cached[0] >= _PLOTS_TTL:
                cached = (time.monotonic(), await asyncio.to_thread(self._render_plots))
                self._plots = cached
        return web.Response(
            text=cached[1][name],
            content_type="image/svg+xml",
            headers={"Content-Security-Policy": _PLOT_CSP},
        )

    def _render_plots(self) -> dict[str, str]:
        from bruteguard.dashboard.plots import render_plots

        return render_plots(self.config, time.time() - _PLOT_SPAN)

    # -- actions ---------------------------------------------------------------------

    async def ban(self, fields: dict[str, Any]) -> Any:
        target = _target(fields.get("ip"))
        arguments: dict[str, Any] = {"ip": target}
        jail = _field(fields, "jail")
        if jail:
            arguments["jail"] = jail
        duration = _field(fields, "for")
        if duration:
            try:
                parse_duration(duration)
            except ValueError as error:
                raise _Refused(400, f"for: {error}") from None
            arguments["for"] = duration
        return await asyncio.to_thread(control_request, self.config.socket, "ban", **arguments)

    async def unban(self, fields: dict[str, Any]) -> Any:
        target = _target(fields.get("ip"))
        return await asyncio.to_thread(control_request, self.config.socket, "unban", ip=target)

    async def send(self, fields: dict[str, Any]) -> Any:
        from bruteguard.cli.abuse import send_now

        case = _field(fields, "case")
        if not case:
            raise _Refused(400, "case: which case to send")
        return {"case": case, "state": await send_now(self.config, case)}


def _loopback_name(host: str) -> bool:
    """Whether a Host header names this machine's loopback: ``localhost`` or a loopback
    address, with or without a port."""
    if host.startswith("["):  # [v6] or [v6]:port
        name = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port or v4:port
        name = host.partition(":")[0]
    else:  # a name or v4 without a port, or a bare v6
        name = host
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _field(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        raise _Refused(400, f"{name}: a short text")
    return value.strip()


def _target(value: Any) -> str:
    """An address or a network, as the daemon will take it (it checks again)."""
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        raise _Refused(400, "ip: an IPv4 or IPv6 address, or a CIDR network")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise _Refused(400, "ip: an IPv4 or IPv6 address, or a CIDR network") from None


def _tls(config: Config) -> ssl.SSLContext | None:
    settings = config.dashboard
    if not settings.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def serve(
    config: Config, login: Login, host: str, port: int, ready: Callable[[str], None]
) -> None:
    """Serve until cancelled; ``ready`` gets the URL once the socket listens (the port
    the kernel chose when ``port`` is 0)."""
    runner = web.AppRunner(Dashboard(config, login).app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=_tls(config))
        await site.start()
        bound = runner.addresses[0]
        scheme = "https" if config.dashboard.tls else "http"
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        ready(f"{scheme}://{shown}:{bound[1]}/")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()

"""The web console's routes (Starlette): pages, a JSON API, a server-sent event stream, /metrics.

Starlette on uvicorn (docs/web-console.md says why): the fleet page keeps one
long-lived server-sent-events response per browser, which an asynchronous
server holds for the price of a small object instead of a thread each. Work
that touches SQLite runs in Starlette's thread pool, never on the event loop.
"""

import asyncio
import html
import json
import math
import os
import re
import urllib.parse
from typing import Any, Dict, Optional

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import fleet, metrics
from .backend import Backend, CommandRefused
from .security import COOKIE, Guard, is_loopback

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
PAGES = os.path.join(HERE, "pages")
STREAM_EVERY_S = 0.5     # a change reaches an open page within this plus ROWS_TTL_S (under 1 s)
MAX_BODY = 16 * 1024


async def bounded_body(request: "Request") -> Optional[bytes]:
    """The request's body, or None past MAX_BODY: read no further than that, whatever the
    client says or sends (the sign-in page takes requests from anyone who reaches it)."""
    try:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return None
    except ValueError:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return body
MAX_STREAMS = 64         # open fleet pages at once; one more is refused (503), never queued
# Scripts and styles from this origin only (style attributes allowed: bars, rule colours, uPlot);
# no framing (clickjacking).
HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                      "img-src 'self' data:; frame-ancestors 'none'; "
                                      "form-action 'self'; base-uri 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "X-Frame-Options": "DENY"}

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _page(name: str, **values: str) -> str:
    with open(os.path.join(PAGES, name), encoding="utf-8") as handle:
        text = handle.read()
    # One pass: a value (a device id from the URL, a login `next`) that contains
    # "{{auth}}" or the like is shown as it is, never filled in itself.
    return PLACEHOLDER.sub(lambda m: html.escape(values[m.group(1)], quote=True)
                           if m.group(1) in values else m.group(0), text)


def create_app(backend: Backend, guard: Guard, registry: Any) -> Starlette:
    """The application; `registry` is the Prometheus registry /metrics renders."""

    def identify(request: Request) -> Optional[tuple]:
        if not guard.required:
            host = (request.headers.get("host") or "").rsplit(":", 1)[0]
            if not is_loopback(host):   # DNS rebinding: a loopback console answers loopback names only
                return None
        return guard.who(request.cookies.get(COOKIE), request.headers.get("authorization"))

    def denied(request: Request) -> Response:
        if request.url.path.startswith(("/api/", "/metrics")):
            return JSONResponse({"error": "sign in first"}, status_code=401)
        return RedirectResponse("/login?next=" + request.url.path, status_code=303)

    async def body_json(request: Request) -> Dict[str, Any]:
        body = await bounded_body(request)
        if body is None:
            raise ValueError("request body over %d bytes" % MAX_BODY)
        data = json.loads(body.decode("utf-8") or "{}")
        if not isinstance(data, dict):
            raise ValueError("a JSON object, please")
        return data

    def post_allowed(request: Request, user: tuple) -> Optional[Response]:
        origin = request.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
            return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
        if not guard.csrf_ok(user[1], request.headers.get("x-csrf-token")):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        return None

    async def fleet_page(request: Request) -> Response:
        user = identify(request)
        if user is None:
            return denied(request)
        return HTMLResponse(_page("fleet.html", csrf=user[1] or "", user=user[0],
                                  auth="yes" if guard.required else "no"))

    async def device_page(request: Request) -> Response:
        user = identify(request)
        if user is None:
            return denied(request)
        return HTMLResponse(_page("device.html", csrf=user[1] or "", user=user[0],
                                  device=request.path_params["device"],
                                  auth="yes" if guard.required else "no"))

    async def login_page(request: Request) -> Response:
        if not guard.required:
            return RedirectResponse("/", status_code=303)
        return HTMLResponse(_page("login.html", next=request.query_params.get("next", "/"),
                                  error=""))

    async def login(request: Request) -> Response:
        if not guard.required:
            return RedirectResponse("/", status_code=303)
        body = await bounded_body(request)   # a urlencoded form, parsed here: no multipart dependency
        if body is None:
            return JSONResponse({"error": "request body too large"}, status_code=400)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        name = guard.check_secret(form.get("name", ""), form.get("secret", ""))
        target = form.get("next") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if name is None:
            await asyncio.sleep(0.5)   # slows guessing; secrets are at least 12 characters
            return HTMLResponse(_page("login.html", next=target, error="wrong name or secret"),
                                status_code=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, guard.sign_in(name), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        guard.sign_out(request.cookies.get(COOKIE))
        response = RedirectResponse("/login" if guard.required else "/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def api_fleet(request: Request) -> Response:
        if identify(request) is None:
            return denied(request)
        return JSONResponse(await run_in_threadpool(backend.fleet))

    streams = [0]

    async def api_stream(request: Request) -> Response:
        if identify(request) is None:
            return denied(request)
        if streams[0] >= MAX_STREAMS:
            return JSONResponse({"error": "%d fleet pages are open already" % MAX_STREAMS},
                                status_code=503)

        async def events():
            changes = fleet.Changes()
            last_alerts = None
            streams[0] += 1
            try:
                async for chunk in updates(changes, last_alerts):
                    yield chunk
            finally:
                streams[0] -= 1

        async def updates(changes, last_alerts):
            while not await request.is_disconnected():
                rows = await run_in_threadpool(backend.rows)
                update = changes.update(rows)
                alerts = await run_in_threadpool(backend.alerts, rows)
                if update["full"] or update["rows"] or update["removed"] or alerts != last_alerts:
                    update["counts"] = fleet.counts(rows)
                    update["alerts"] = alerts
                    update["now"] = backend.clock()
                    last_alerts = alerts
                    yield "data: %s\n\n" % json.dumps(update, separators=(",", ":"))
                else:
                    yield ": idle\n\n"   # keeps proxies from closing a quiet stream
                await asyncio.sleep(STREAM_EVERY_S)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def api_device(request: Request) -> Response:
        if identify(request) is None:
            return denied(request)
        found = await run_in_threadpool(backend.device, request.path_params["device"])
        if found is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        return JSONResponse(found)

    async def api_history(request: Request) -> Response:
        if identify(request) is None:
            return denied(request)
        query = request.query_params
        try:
            since = float(query["since"]) if query.get("since") else None
            until = float(query["until"]) if query.get("until") else None
            points = int(query.get("points") or 2000)
            if not all(math.isfinite(v) for v in (since, until) if v is not None):
                raise ValueError("nan or inf")   # no time to ask for, and no JSON to answer with
        except ValueError:
            return JSONResponse({"error": "since, until: Unix seconds; points: a number"},
                                status_code=400)
        found = await run_in_threadpool(backend.history, request.path_params["device"], since,
                                        until, points)
        return JSONResponse(found)

    async def api_ack(request: Request) -> Response:
        user = identify(request)
        if user is None:
            return denied(request)
        refused = post_allowed(request, user)
        if refused is not None:
            return refused
        try:
            data = await body_json(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        ok = await run_in_threadpool(backend.acknowledge, str(data.get("device")),
                                     str(data.get("alert")), user[0])
        return JSONResponse({"ok": ok}, status_code=200 if ok else 404)

    async def api_silence(request: Request) -> Response:
        user = identify(request)
        if user is None:
            return denied(request)
        refused = post_allowed(request, user)
        if refused is not None:
            return refused
        try:
            data = await body_json(request)
            seconds = float(data.get("seconds") or 3600)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        until = await run_in_threadpool(backend.silence, str(data.get("device")),
                                        str(data.get("alert") or "*"), seconds, user[0])
        return JSONResponse({"ok": until is not None, "until": until},
                            status_code=200 if until is not None else 404)

    async def api_command(request: Request) -> Response:
        user = identify(request)
        if user is None:
            return denied(request)
        if not guard.required:
            return JSONResponse({"error": "read-only: start serve with --auth FILE and --keys DIR "
                                          "to send commands"}, status_code=403)
        refused = post_allowed(request, user)
        if refused is not None:
            return refused
        try:
            data = await body_json(request)
            command = await run_in_threadpool(
                backend.command, request.path_params["device"], str(data.get("cmd")),
                data.get("args") or {}, user[0], request.client.host if request.client else None)
        except CommandRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=403)
        except (ValueError, OSError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "id": command["id"], "by": user[0]})

    async def api_forget(request: Request) -> Response:
        user = identify(request)
        if user is None:
            return denied(request)
        refused = post_allowed(request, user)
        if refused is not None:
            return refused
        found = await run_in_threadpool(backend.forget, request.path_params["device"])
        return JSONResponse({"ok": found}, status_code=200 if found else 404)

    async def api_metrics(request: Request) -> Response:
        if identify(request) is None:
            return denied(request)
        body = await run_in_threadpool(metrics.render, registry)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    async def robots(request: Request) -> Response:
        return PlainTextResponse("User-agent: *\nDisallow: /\n")

    routes = [
        Route("/", fleet_page),
        Route("/device/{device}", device_page),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/fleet", api_fleet),
        Route("/api/stream", api_stream),
        Route("/api/device/{device}", api_device),
        Route("/api/device/{device}/history", api_history),
        Route("/api/device/{device}/command", api_command, methods=["POST"]),
        Route("/api/device/{device}/forget", api_forget, methods=["POST"]),
        Route("/api/alerts/ack", api_ack, methods=["POST"]),
        Route("/api/alerts/silence", api_silence, methods=["POST"]),
        Route("/metrics", api_metrics),
        Route("/robots.txt", robots),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


class SecurityHeaders(object):
    """Adds HEADERS to every response (plain ASGI: streams pass through untouched)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()
                         if k.lower().encode() not in present]
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            await send(message)
        await self.app(scope, receive, with_headers)

"""Request guards of the server that sit below the endpoints: the ``Host`` check (every loopback
form, IPv6 included, answered in JSON) and the request-body reader's time limits (a read timeout
between chunks, a deadline for the whole body, and a minimum average rate), so that clients that
send a body slowly cannot hold the admission places (issue 19, item 1)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

#: names that mean "this computer" in a Host header
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_of(header: str) -> str:
    """The host part of a ``Host`` header value, lower case, without port, brackets or a trailing dot:
    ``[::1]:8080`` -> ``::1``, ``LocalHost.:80`` -> ``localhost``. Empty for a malformed value."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        if end < 0:
            return ""
        rest = h[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return ""
        return h[1:end]
    if h.count(":") == 1:
        h, port = h.split(":")
        if not port.isdigit():
            return ""
    elif h.count(":") > 1:  # an unbracketed IPv6 literal is not a valid Host header
        return ""
    return h.rstrip(".")


def is_loopback_host(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostCheck:
    """ASGI middleware: requests whose ``Host`` is not allowed get a JSON 400 (``invalid_host``),
    against DNS rebinding. ``allowed``: host names or addresses (any port); ``"loopback"`` in it allows
    every loopback form (localhost, 127.0.0.0/8, ::1, ``[::1]``)."""

    def __init__(self, app: Any, allowed: Iterable[str]):
        self.app = app
        allowed = {a.strip().lower().strip("[]") for a in allowed}
        self.any_loopback = "loopback" in allowed
        self.allowed = {a for a in allowed if a != "loopback"}

    def permits(self, header: str) -> bool:
        host = host_of(header)
        if not host:
            return False
        return host in self.allowed or (self.any_loopback and is_loopback_host(host))

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"]
        if len(headers) == 1 and self.permits(headers[0]):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return None
        body = json.dumps({"status": 400, "error": "invalid_host",
                           "message": "this server answers requests for this computer only (the Host header names another host)"}).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return None


class BodyTooSlow(Exception):
    """The client sent its body too slowly (see :func:`timed_receive`); answered 408."""


def timed_receive(receive: Callable, read_timeout_s: float, body_timeout_s: float, min_rate: float, grace_s: float) -> Callable:
    """Wrap an ASGI ``receive`` for a request body: each chunk must come within ``read_timeout_s`` of
    the previous one, the whole body within ``body_timeout_s``, and from ``grace_s`` on the average
    rate must stay at or above ``min_rate`` bytes/s (0 = no minimum). A breach raises
    :class:`BodyTooSlow`."""
    start = last = time.monotonic()
    total = 0

    def breach(now: float) -> str | None:
        if now - start >= body_timeout_s:
            return f"the request body took longer than {body_timeout_s:g} s"
        if now - last >= read_timeout_s:
            return f"no part of the request body arrived for {read_timeout_s:g} s"
        if min_rate > 0 and now - start >= grace_s and total < min_rate * (now - start):
            return (f"the request body arrived at {total / (now - start):.0f} bytes/s, below this server's minimum of "
                    f"{min_rate:g} bytes/s")
        return None

    async def wrapped() -> dict:
        nonlocal total, last
        while True:
            now = time.monotonic()
            why = breach(now)
            if why:
                raise BodyTooSlow(why)
            due = [start + body_timeout_s, last + read_timeout_s]
            if min_rate > 0:  # when the average falls below the minimum if nothing more arrives
                due.append(start + max(grace_s, (total + 1) / min_rate))
            try:  # a cancelled receive consumes nothing: the next call gets the chunk
                message = await asyncio.wait_for(receive(), timeout=max(min(due) - now, 0.001))
            except asyncio.TimeoutError:
                continue
            if message.get("type") == "http.request":
                total += len(message.get("body", b""))
                last = time.monotonic()
            return message

    return wrapped

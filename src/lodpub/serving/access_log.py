"""The access log: one JSON line per request on standard error, each counted for /metrics."""

from __future__ import annotations

import asyncio
import sys
import time
from json.encoder import encode_basestring as quote  # type: ignore[attr-defined]

from lodpub.serving.metrics import BYTES, REQUESTS
from lodpub.serving.sparql_endpoint import EDITION_KEY


def route_of(scope) -> str:
    """The route a request matched, as its template (``/doc/{kind}/{ident}``): a label of few values."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "") or "other"
    return "/sparql" if scope.get("path") == "/sparql" else "unmatched"


class AccessLog:
    """One JSON line per request on standard error: method, path, status, bytes, milliseconds, client, edition.

    It wraps the framework's app; the SPARQL endpoint in front of it records its own
    requests through ``record``. Lines are written together once per turn of the event
    loop, so that under load the log costs one system call per batch, not one per request.
    """

    def __init__(self, app):
        self.app = app
        self.pending: list[str] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        seen = {"status": 0, "bytes": 0}

        async def sending(event):
            if event["type"] == "http.response.start":
                seen["status"] = event["status"]
                headers = event.setdefault("headers", [])
                if not any(name.lower() == b"access-control-allow-origin" for name, _ in headers):
                    headers.append((b"access-control-allow-origin", b"*"))  # every answer is public
            elif event["type"] == "http.response.body":
                seen["bytes"] += len(event.get("body", b""))
            await send(event)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.record(scope, seen["status"], seen["bytes"], start)

    def record(self, scope, status: int, size: int, start: float) -> None:
        """Log one request that began at ``start`` (``time.perf_counter()``)."""
        client = scope.get("client") or ("", 0)
        edition = scope.get(EDITION_KEY)
        # Written out rather than json.dumps(dict): this runs for every request, and only the strings
        # need JSON's escaping.
        line = (f'{{"method": {quote(scope["method"])}, "path": {quote(scope["path"])}, '
                f'"query": {quote(scope.get("query_string", b"").decode("latin-1")[:200])}, '
                f'"status": {status}, "bytes": {size}, '
                f'"ms": {(time.perf_counter() - start) * 1000:.1f}, "client": {quote(str(client[0]))}, '
                f'"edition": "{edition.name if edition else ""}"}}')
        route = route_of(scope)
        REQUESTS.labels(route, status).inc()
        BYTES.labels(route).inc(size)
        self.pending.append(line)
        if len(self.pending) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()

"""What caches may keep, and for how long: the ETag rule and Cache-Control, one place for every route.

Several fronts serve one edition behind any load balancer, so an answer's ETag must be the same whichever front
gave it, and computed without state. A hash of the body is exact, but a query that fixes no order may list its
solutions in another order on another engine or worker (README "Two engines, one answer"), and a hash needs the
answer first. So an ETag here names what the answer *is*, not its bytes: the edition it reads, the normalised
request (path and parameters, sorted by name, values of one name in their order), the representation (media
type, content-coding, language), lodpub's version (a new release's pages are new), and the settings that shape
answers (base, titles, row cap, page size...; not ports, workers or credentials, so differently sized fronts
agree). Any front computes it alike, and answers ``If-None-Match`` with 304 before running a query: what a
CDN revalidating wants. It is weak (``W/``: semantically equivalent, which different row orders are), and
includes the coding, so a gzipped answer and a plain one never share it. The files of an edition keep their
strong content-hash ETags (``downloads.py``): bytes that ranges are cut from must be exact.

Cache-Control: what reads the current edition (pages, documents, query answers, the current files) may change
when a new edition is published, so ``public, max-age=300`` and the ETag to revalidate; what is addressed by
edition (``/data/EDITION/FILE``, mementos) never changes, so ``immutable`` for a year; errors (4xx, 5xx, the 503s
included) and what operators read (``/health``, ``/metrics``) ``no-store``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

from lodpub import __version__
from lodpub.settings import Settings

CURRENT = "public, max-age=300"  # answers of the current edition: a new edition may change them
IMMUTABLE = "public, max-age=31536000, immutable"  # addressed by edition: never changes
NO_STORE = "no-store"  # errors, and what operators read
NEGOTIATED = "Accept, Accept-Encoding"  # Vary of an answer chosen by Accept that may come gzipped

# Settings that shape no answer: how a front runs, where it reads from, who it is. Everything else counts
# towards the ETag, so that a setting added later errs towards fronts that disagree, never towards one ETag
# for two answers. The credentials are never hashed into anything public.
OPERATIONAL = frozenset({
    "host", "port", "workers", "memory_workers", "columnar_workers", "worker_memory_mb", "warm_seconds",
    "result_cache_mb", "cache_dir", "keep_editions", "follow_pointer", "store", "store_timeout_parameter",
    "store_user", "store_password", "store_token", "queue_per_worker", "client_queries", "limit_concurrency",
    "timeout_keep_alive", "header_timeout", "max_header_bytes", "max_headers", "metrics",
})
_TAG = re.compile(r'\s*(?:(?:W/)?("[^"]*"))?\s*(?:,|$)')  # one element of If-None-Match (empty ones allowed)

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def params_of(query_string: bytes) -> dict[str, list[str]]:
    """A query string's parameters, as the routes read them."""
    return parse_qs(query_string.decode("latin-1"), keep_blank_values=True)


def representation(path: str, params: dict[str, list[str]], media_type: str, coding: str, language: str = "") -> bytes:
    """What identifies one answer within an edition: the path, the parameters sorted by name (the values of a
    name keep their order: routes read the first or the last), and the representation chosen. ``coding`` is
    the content-coding negotiated (``gzip`` when the client accepts it and the route compresses, even an answer
    too small to be; else ``identity``)."""
    return json.dumps([path, sorted(params.items()), media_type.lower(), coding, language],
                      ensure_ascii=False).encode()


class Tags:
    """The ETag rule for one server's settings."""

    def __init__(self, settings: Settings):
        shaping = {k: v for k, v in asdict(settings).items() if k not in OPERATIONAL}
        self.seed = json.dumps([__version__, shaping], sort_keys=True, ensure_ascii=False).encode()

    def etag(self, edition: str, what: bytes) -> str:
        digest = hashlib.blake2b(self.seed + b"\0" + edition.encode() + b"\0" + what, digest_size=10).hexdigest()
        return f'W/"{edition}-{digest}"'


def matches(if_none_match: str, etag: str, star: bool = True) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2), or is ``*`` (when ``star``:
    there is a representation). A malformed field names nothing."""
    value = if_none_match.strip()
    if value == "*":
        return star
    wanted = etag.removeprefix("W/")
    found, at = [], 0
    while at < len(value):
        tag = _TAG.match(value, at)
        if tag is None:
            return False
        if tag.group(1):
            found.append(tag.group(1))
        at = tag.end()
    return wanted in found


def add_vary(headers: MutableMapping[str, str], *names: str) -> None:
    """Add ``names`` to the ``Vary`` of ``headers`` (a dict or a response's headers), keeping what is there."""
    key = next((k for k in headers if k.lower() == "vary"), "Vary")
    have = [v.strip() for v in headers.get(key, "").split(",") if v.strip()]
    for name in (n.strip() for n in names):
        if name and name.lower() not in {v.lower() for v in have}:
            have.append(name)
    headers[key] = ", ".join(have)


_DROPPED_BY_304 = (b"content-length", b"content-type", b"content-encoding")


def revalidated(status: int, headers: list[tuple[bytes, bytes]], condition: str | None) -> list | None:
    """The headers of the 304 that answers a 200 whose ETag ``If-None-Match`` (``condition``) names, or None:
    its ETag, Cache-Control, Vary, Content-Location, Link..., nothing that describes a body (RFC 9110 15.4.5)."""
    if status != 200 or not condition:
        return None
    etag = next((v.decode("latin-1") for n, v in headers if n.lower() == b"etag"), "")
    if not etag or not matches(condition, etag):
        return None
    return [(n, v) for n, v in headers if n.lower() not in _DROPPED_BY_304]


class Policy:
    """Around the framework's routes: ``no-store`` on every error; on GET and HEAD, ``CURRENT`` where a route
    said nothing, the ETag of ``Tags`` on a 200 that has none, and 304 where ``If-None-Match`` names it. The
    route's response tells the representation: Content-Type, Content-Encoding and Content-Language."""

    def __init__(self, app: Callable[..., Awaitable[None]], settings: Settings, edition_of: Callable[[Scope], str]):
        self.app = app
        self.tags = Tags(settings)
        self.edition_of = edition_of

    async def __call__(self, scope: Scope, receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        readable = scope["method"] in ("GET", "HEAD")
        condition = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"if-none-match"), None)
        dropping = False

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal dropping
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", ()))
                found = {n.lower(): v for n, v in headers}
                if status >= 400:
                    headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
                    headers.append((b"cache-control", NO_STORE.encode()))
                elif readable:
                    if b"cache-control" not in found:
                        headers.append((b"cache-control", CURRENT.encode()))
                    if status == 200 and b"etag" not in found and found.get(b"cache-control") != NO_STORE.encode():
                        headers.append((b"etag", self.tags.etag(self.edition_of(scope), representation(
                            scope["path"], params_of(scope.get("query_string", b"")),
                            found.get(b"content-type", b"").decode("latin-1"),
                            found.get(b"content-encoding", b"identity").decode("latin-1"),
                            found.get(b"content-language", b"").decode("latin-1"))).encode()))
                    kept = revalidated(status, headers, condition)
                    if kept is not None:
                        status, headers, dropping = 304, kept, True
                message = {**message, "status": status, "headers": headers}
            elif dropping:
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(scope, receive, sending)

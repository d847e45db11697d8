"""Limits on what one HTTP client may make the server hold, and the hygiene of what it sends.

Two pieces, both measured against the running server (tests/test_abuse.py):

* ``protocol(settings)``: uvicorn's httptools protocol with the bounds it lacks. uvicorn 0.54 arms no
  timer until a first response is sent, so a client that connects and sends nothing, or trickles its
  headers a byte at a time, held its connection forever (and every held connection counts towards
  ``limit_concurrency``, past which everyone gets 503); llhttp and uvicorn set no limit on the size or
  number of headers (a 20 MB header and 100,000 headers were answered 200); and every request
  pipelined in one read was parsed and queued at once (180 KB of ``GET /health`` on 20 connections
  grew the server by 73 MB). After a refusal it reads and drops what the client still sends for a
  moment, so that the client reads the answer rather than a connection reset.
* ``Guard``: an ASGI app in front of everything that answers 400 for a path or query string that is
  not UTF-8 once percent-decoded or holds a NUL, 404 for dot segments and encoded slashes in a path,
  and turns the framework's 405 to a plain ``OPTIONS`` into 204 with ``Allow``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from lodpub.serving.events import event
from lodpub.settings import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# httptools.parse_url keeps offsets in 16 bits: a longer request target already failed as a bare 400.
MAX_URL_BYTES = 65_535
# Requests read but not yet answered on one connection; beyond, the connection is closed. Browsers do
# not pipeline, and clients that do send a few.
MAX_PIPELINED = 16
# Kept free of the process's descriptors for the workers' sockets, the store and the files served.
RESERVED_FILES = 256
# After a refusal, what the client still sends is read and dropped for this long before the connection
# closes: closing with unread bytes makes the kernel send a reset, which can destroy the answer before
# the client reads it (nginx's lingering close, for the same reason).
LINGER_SECONDS = 2.0


class _Refused(Exception):
    """Raised in a parser callback to stop reading a request; the protocol answers ``status``."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def raise_open_files() -> int:
    """Raise this process's soft limit of open files to its hard limit, and return it.

    Every connection is a descriptor: at the common default soft limit of 1,024, a thousand idle
    connections would leave none for new clients, the workers' sockets or the files being served.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def protocol(settings: Settings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol bounded by ``settings``' HTTP limits (pass it as ``http=``)."""
    return type("BoundedProtocol", (BoundedProtocol,), {
        "header_timeout": settings.header_timeout, "max_header_bytes": settings.max_header_bytes,
        "max_headers": settings.max_headers})


class BoundedProtocol(HttpToolsProtocol):
    """A request's head and body must arrive within ``header_timeout`` seconds each (the first from
    when the connection opened or the request began); its headers are bounded in bytes and in number
    (431), its target in bytes (414); at most ``MAX_PIPELINED`` requests wait on one connection."""

    header_timeout = 10.0
    max_header_bytes = 16_384
    max_headers = 100

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._refusal: _Refused | None = None
        self._in_head = self._in_body = self._lingering = False
        self._head_bytes = self._header_bytes = self._header_count = 0
        super().connection_made(transport)
        self._arm()  # a client that connects and says nothing is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        super().data_received(data)
        if self.transport.is_closing() or self._lingering:
            return
        if self._in_head:
            # httptools hands a header over only once it is whole, so one endless header is caught here.
            self._head_bytes += len(data)
            if self._head_bytes - len(self.url) > self.max_header_bytes + 1024:
                self._answer(_Refused(431, self._too_large()))
        elif self._in_body and self._deadline is None:
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._header_bytes, self._header_count = True, 0, 0, 0
        if self._deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self._refuse(414, f"the request target is longer than {MAX_URL_BYTES:,} bytes; send a long "
                              "SPARQL query by POST")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4
        if self._header_count > self.max_headers:
            self._refuse(431, f"the request has more than {self.max_headers} header fields")
        if self._header_bytes > self.max_header_bytes:
            self._refuse(431, self._too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._in_body = False, True
        self._disarm()
        if len(self.pipeline) >= MAX_PIPELINED:
            self._refuse(0, f"more than {MAX_PIPELINED} requests pipelined without reading the answers")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn for any parser error, ours included: answer ours with its own status."""
        refusal, self._refusal = self._refusal, None
        self._answer(refusal or _Refused(400, msg))

    def _refuse(self, status: int, message: str) -> None:
        """Stop parsing (httptools turns the exception into a parser error, which uvicorn hands to
        ``send_400_response``) and answer ``status`` (0: close without answering)."""
        self._refusal = _Refused(status, message)
        raise self._refusal

    def _answer(self, refusal: _Refused) -> None:
        if self._lingering:  # answered already
            return
        self._disarm()
        event("http_refused", status=refusal.status or None, client=(self.client or ("",))[0], message=str(refusal))
        if refusal.status and (self.cycle is None or self.cycle.response_complete):
            body = (str(refusal) + "\n").encode()
            head = [STATUS_LINE[refusal.status]]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head += [b"content-type: text/plain; charset=utf-8\r\n", b"cache-control: no-store\r\n",
                     b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"]
            self.transport.write(b"".join(head) + body)
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self._lingering = True
                self.loop.call_later(LINGER_SECONDS, self.transport.close)
                return
        self.transport.close()

    def _too_large(self) -> str:
        return f"the request's header fields are larger than {self.max_header_bytes:,} bytes in all"

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._lingering:
            return
        if self._in_head:  # a request begun but not finished: say why it is dropped (nothing was answered)
            self._answer(_Refused(408, f"the request's headers did not arrive within {self.header_timeout:g} s"))
        else:  # a new connection that said nothing (browsers open some ahead), or a stalled body: just close
            event("connection_timed_out", logging.DEBUG, client=(self.client or ("",))[0])
            self.transport.close()


class BadText(ValueError):
    """Text a client sent that is not UTF-8, or that holds a NUL: its message says which."""


def text_of(raw: bytes, what: str) -> str:
    """``raw`` as UTF-8 text without NUL, or BadText naming ``what`` and the offending byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadText(_not_utf8(what, exc)) from None
    if "\x00" in text:
        raise BadText(f"the {what} holds a NUL character (%00), which no text here can contain")
    return text


def form_of(body: bytes) -> dict[str, list[str]]:
    """The fields of an ``application/x-www-form-urlencoded`` body, decoded strictly."""
    try:
        fields = parse_qs(text_of(body, "form body"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadText(_not_utf8("form body", exc)) from None
    if any("\x00" in name or any("\x00" in v for v in values) for name, values in fields.items()):
        raise BadText("the form body holds a NUL character (%00), which no text here can contain")
    return fields


def _not_utf8(what: str, exc: UnicodeDecodeError) -> str:
    return (f"the {what} is not valid UTF-8 once percent-decoded (byte 0x{exc.object[exc.start]:02X}); "
            "percent-encode text as UTF-8")


_NOT_ASCII_OR_NUL = re.compile(rb"%(?:[89a-fA-F][0-9a-fA-F]|00)")  # the escapes that can make text bad


def refusal(scope: Scope) -> tuple[int, str] | None:
    """Why a request's target names nothing here (status and message), or None. Only a target with a
    ``%``, a backslash or a ``/.`` is decoded, so the common request costs three byte searches."""
    raw = scope.get("raw_path") or scope["path"].encode()
    if b"%" in raw or b"\\" in raw or b"/." in raw:
        lowered = raw.lower()
        if b"%2f" in lowered or b"%5c" in lowered or b"\\" in raw:
            return 404, "Not Found: no path here holds an encoded slash (%2F) or a backslash"
        try:
            path = text_of(unquote_to_bytes(raw), "path")
        except BadText as exc:
            return 400, str(exc)
        if any(c < " " or c == "\x7f" for c in path):
            return 400, "the path holds a control character (%01-%1F or %7F)"
        if any(segment in (".", "..") for segment in path.split("/")):
            return 404, "Not Found: no path here holds a '.' or '..' segment"
    query = scope.get("query_string", b"")
    if b"%" in query and _NOT_ASCII_OR_NUL.search(query):  # unquote_to_bytes costs ~30 us a query; this 1
        try:
            text_of(unquote_to_bytes(query), "query string")
        except BadText as exc:
            return 400, str(exc)
    return None


class Guard:
    """In front of everything: answers ``refusal``'s requests itself (recording them with ``record``,
    the access log's), and gives a plain ``OPTIONS`` (not a CORS preflight) 204 and ``Allow``."""

    def __init__(self, app: ASGIApp, record: Callable[[Scope, int, int, float], None]):
        self.app = app
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = refusal(scope)
        if refused is not None:
            start = time.perf_counter()
            status, message = refused
            body = (message + "\n").encode()
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body)),
                (b"access-control-allow-origin", b"*"), (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": body})  # uvicorn drops it for HEAD
            return self.record(scope, status, len(body) if scope["method"] != "HEAD" else 0, start)
        if scope["method"] == "OPTIONS" and scope["path"] == "*":  # the server as a whole
            await send({"type": "http.response.start", "status": 204, "headers": [
                (b"allow", b"GET, HEAD, POST, OPTIONS")]})
            return await send({"type": "http.response.body", "body": b""})
        if scope["method"] == "OPTIONS" and not any(name == b"access-control-request-method"
                                                    for name, _ in scope["headers"]):
            send = _allowing(send, scope["path"] == "/sparql")
        await self.app(scope, receive, send)


def _allowing(send: Send, sparql: bool) -> Send:
    """``send`` turning the framework's 405 to OPTIONS (it routes no OPTIONS) into 204 with the route's
    ``Allow`` and OPTIONS (and POST at /sparql, which the query endpoint answers in front of it)."""
    replaced = False

    async def sending(event: MutableMapping[str, Any]) -> None:
        nonlocal replaced
        if event["type"] == "http.response.start" and event["status"] == 405:
            replaced = True
            headers = [(n, v) for n, v in event.get("headers", [])
                       if n.lower() not in (b"allow", b"content-length", b"content-type")]
            allow = next((v for n, v in event.get("headers", []) if n.lower() == b"allow"), b"GET, HEAD")
            methods = [m.strip() for m in allow.split(b",")] + [b"POST"] * sparql + [b"OPTIONS"]
            headers.append((b"allow", b", ".join(dict.fromkeys(methods))))
            event = {"type": "http.response.start", "status": 204, "headers": headers}
        elif event["type"] == "http.response.body" and replaced:
            if event.get("more_body"):
                return
            event = {"type": "http.response.body", "body": b""}
        await send(event)
    return sending

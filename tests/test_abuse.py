"""HTTP abuse, against the real server (issue 11): slow and idle clients, oversized heads, bad bytes,
traversal, hostile ranges, pipelining, and HEAD and OPTIONS on every route. Requests that an HTTP client
would normalise or refuse to send are written on raw sockets."""

from __future__ import annotations

import re
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import Server

ASK = "/sparql?query=ASK%20%7B%20%3Fs%20%3Fp%20%3Fo%20%7D"
TIMEOUT = 2.0  # the header timeout of the servers started here (seconds)


@contextmanager
def open_files(soft: int) -> Iterator[None]:
    """This process (and what it starts) with a soft limit of ``soft`` open files, the hard one kept."""
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (before, hard))


@pytest.fixture(scope="module")
def strict(served_dist: Path) -> Iterator[Server]:
    """A server with a 2-second header timeout, started with a soft limit of 512 open files (as a small
    one a systemd unit or a shell might give): it must raise its own to hold a thousand connections."""
    with open_files(512):
        running = Server(served_dist, {"LODPUB_HEADER_TIMEOUT": str(TIMEOUT), "LODPUB_WORKERS": "2"})
    yield running
    running.stop()


def edition(server: Server) -> str:
    return httpx.get(server.url + "/health").json()["edition"]


def connect(server: Server, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def exchange(server: Server, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` as it is and read until the server closes the connection."""
    with connect(server, timeout) as s:
        s.sendall(request)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
        return received


def get(server: Server, target: bytes, headers: bytes = b"", method: bytes = b"GET",
        body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request with the target exactly as given: status, headers (lower-cased names) and body."""
    answer = exchange(server, method + b" " + target + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                      + headers + b"\r\n" + body)
    head, _, content = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:])}
    return int(lines[0].split()[1]), fields, content


def closed_within(s: socket.socket, seconds: float) -> tuple[float, bytes]:
    """How long until the server closed ``s`` (inf if it did not within ``seconds``), and what it said."""
    start = time.monotonic()
    s.settimeout(seconds)
    said = b""
    try:
        while chunk := s.recv(4096):
            said += chunk
    except TimeoutError:
        return float("inf"), said
    except ConnectionResetError:
        pass
    return time.monotonic() - start, said


# ---------------------------------------------------------------- slow and idle clients


def test_slowloris_holds_no_worker_blocks_nobody_and_is_cut_off(strict):
    slow = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 1000
    closed: dict[int, tuple[float, bytes]] = {}

    def trickle(n: int) -> None:
        with connect(strict) as s:
            start, said = time.monotonic(), b""
            s.settimeout(0.5)  # a byte every half second, until the server closes the connection
            for byte in slow:
                try:
                    s.send(bytes([byte]))
                    said = s.recv(4096)  # returns once the server answers or closes
                    break
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            closed[n] = (time.monotonic() - start, said)

    clients = [threading.Thread(target=trickle, args=(n,)) for n in range(8)]
    for client in clients:
        client.start()
    time.sleep(0.5)
    for _ in range(5):  # meanwhile, others are answered at once
        for path in ("/health", ASK):
            started = time.monotonic()
            assert httpx.get(strict.url + path, timeout=5).status_code == 200
            assert time.monotonic() - started < 0.5, path
    for client in clients:
        client.join(timeout=TIMEOUT + 10)
    assert len(closed) == 8
    for seconds, said in closed.values():
        assert TIMEOUT - 0.1 < seconds < TIMEOUT + 1.5  # from the connection's start, not its last byte
        assert said.startswith(b"HTTP/1.1 408 ")
        assert b"did not arrive within 2 s" in said


def test_a_stalled_or_trickled_body_is_cut_off(strict):
    with connect(strict) as stalled, connect(strict) as trickled:
        head = b"POST /sparql HTTP/1.1\r\nHost: test\r\nContent-Type: application/sparql-query\r\n"
        stalled.sendall(head + b"Content-Length: 1000\r\n\r\nASK {")
        trickled.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
        start = time.monotonic()
        while time.monotonic() - start < TIMEOUT + 2:
            try:
                trickled.sendall(b"1\r\n \r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.3)
        assert time.monotonic() - start < TIMEOUT + 1.5
        assert closed_within(stalled, 1)[0] < 1
    assert httpx.get(strict.url + ASK).status_code == 200


def test_a_thousand_idle_connections_do_not_stop_a_new_client(strict):
    with open_files(resource.getrlimit(resource.RLIMIT_NOFILE)[1]):
        idle = [connect(strict) for _ in range(1000)]
        try:
            opened = time.monotonic()
            for path in ("/health", ASK, "/doc/measure/1"):
                started = time.monotonic()
                assert httpx.get(strict.url + path, timeout=5).status_code == 200
                assert time.monotonic() - started < 1, path
            # and each is closed by the server once the header timeout has passed, saying nothing
            ends = [closed_within(s, max(0.1, TIMEOUT + 5 - (time.monotonic() - opened))) for s in idle]
            assert all(said == b"" for _, said in ends)
            assert max(seconds for seconds, _ in ends) < float("inf")
            assert time.monotonic() - opened < TIMEOUT + 3
            metrics = httpx.get(strict.url + "/metrics").text  # counted, not logged (browsers open some ahead)
            assert float(re.search(r'lodpub_events_total\{event="connection_timed_out"\} (\S+)', metrics)[1]) >= 1000
        finally:
            for s in idle:
                s.close()
    assert httpx.get(strict.url + "/health").status_code == 200


def test_past_limit_concurrency_a_client_gets_503_at_once_until_held_connections_time_out(served_dist):
    server = Server(served_dist, {"LODPUB_HEADER_TIMEOUT": str(TIMEOUT), "LODPUB_LIMIT_CONCURRENCY": "20",
                                  "LODPUB_WORKERS": "1"})
    try:
        held = [connect(server) for _ in range(25)]
        time.sleep(0.2)
        started = time.monotonic()
        refused = httpx.get(server.url + "/health", timeout=5)
        assert refused.status_code == 503 and time.monotonic() - started < 0.5
        assert refused.headers["content-type"].startswith("text/plain")
        time.sleep(TIMEOUT + 0.5)
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        for s in held:
            s.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- oversized and numerous headers


def test_one_huge_header_is_431(server):
    status, headers, body = get(server, b"/health", b"X-Big: " + b"a" * 100_000 + b"\r\n")
    assert status == 431 and headers["content-type"] == "text/plain; charset=utf-8"
    assert b"larger than 16,384 bytes" in body
    assert '"event": "http_refused", "status": 431' in server.output()  # an operator sees it


def test_a_header_that_never_ends_is_431_before_it_ends(server):
    with connect(server) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Endless: ")
        sent = 0
        while sent < 10_000_000 and not select.select([s], [], [], 0.01)[0]:  # until the server answers
            s.sendall(b"a" * 65536)
            sent += 65536
        assert sent < 1_000_000
        assert s.recv(4096).startswith(b"HTTP/1.1 431 ")


def test_a_refusal_reaches_a_client_that_sends_megabytes_before_reading(server):
    with connect(server) as s:  # closed with unread bytes, a connection is reset and the answer lost
        s.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 20_000_000 + b"\r\n\r\n")
        assert closed_within(s, 5)[1].startswith(b"HTTP/1.1 431 ")


def test_two_hundred_headers_are_431(server):
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    status, _, body = get(server, b"/health", many)
    assert status == 431 and b"more than 100 header fields" in body


def test_headers_within_the_limits_are_answered(server):
    assert get(server, b"/health", b"".join(b"X-H%d: v\r\n" % i for i in range(95)))[0] == 200
    assert get(server, b"/health", b"Cookie: " + b"c" * 15_000 + b"\r\n")[0] == 200


def test_a_target_longer_than_httptools_can_parse_is_414(server):
    status, _, body = get(server, b"/sparql?query=" + b"a" * 70_000)
    assert status == 414 and b"by POST" in body


# ---------------------------------------------------------------- bad bytes


BAD_TARGETS = [
    (b"/%ff", b"UTF-8"), (b"/doc/measure/%C0%AF", b"UTF-8"), (b"/doc/measure/1%00", b"NUL"),
    (b"/data/void.ttl%00.html", b"NUL"), (b"/search%0a", b"control character"),
    (b"/sparql?query=%ff", b"UTF-8"), (b"/sparql?query=ASK%00%7B%7D", b"NUL"),
    (b"/search?q=%00", b"NUL"), (b"/search?q=%ff", b"UTF-8"), (b"/search?q=%E6%9D", b"UTF-8"),
]


@pytest.mark.parametrize(("target", "named"), BAD_TARGETS)
def test_invalid_utf8_or_nul_in_a_target_is_400_with_a_message(server, target, named):
    status, headers, body = get(server, target)
    assert status == 400 and headers["content-type"] == "text/plain; charset=utf-8"
    assert named in body and b"Traceback" not in body


@pytest.mark.parametrize("target", [b"/\xff", b"/search?q=\xff", b"/search?q=\xe6\x9d\xb1", b"/a\x00b"])
def test_raw_bytes_outside_ascii_in_a_target_are_400(server, target):
    status, _, body = get(server, target)  # refused by the HTTP parser itself
    assert status == 400 and b"Invalid HTTP request" in body


BAD_BODIES = [
    (b"application/x-www-form-urlencoded", b"query=%ff", b"UTF-8"),
    (b"application/x-www-form-urlencoded", b"query=\xff", b"UTF-8"),
    (b"application/x-www-form-urlencoded", b"query=ASK%00%7B%7D", b"NUL"),
    (b"application/x-www-form-urlencoded", b"query=ASK+%7B%7D&x%00=1", b"NUL"),
    (b"application/sparql-query", b"ASK { \xff }", b"UTF-8"),
    (b"application/sparql-query", b"ASK {}\x00", b"NUL"),
]


@pytest.mark.parametrize(("media", "body", "named"), BAD_BODIES)
def test_invalid_utf8_or_nul_in_a_posted_query_is_400_with_a_message(server, media, body, named):
    status, headers, answer = get(server, b"/sparql", b"Content-Type: " + media + b"\r\nContent-Length: %d\r\n"
                                  % len(body), b"POST", body)
    assert status == 400 and headers["content-type"] == "text/plain; charset=utf-8"
    assert named in answer and b"Traceback" not in answer


def test_japanese_text_still_passes(server):
    assert httpx.get(server.url + "/search", params={"q": "東京"}).status_code == 200
    query = 'ASK { ?s ?p "東京都" }'
    assert httpx.get(server.url + "/sparql", params={"query": query}).status_code == 200
    assert httpx.post(server.url + "/sparql", data={"query": query}).status_code == 200
    assert httpx.post(server.url + "/sparql", content=query.encode(),
                      headers={"Content-Type": "application/sparql-query"}).status_code == 200


# ---------------------------------------------------------------- traversal


def test_data_refuses_traversal_in_every_encoding(server):
    name = edition(server).encode()
    targets = [b"/data/../pyproject.toml", b"/data/%2e%2e/x", b"/data/..%2fx", b"/data/%2e%2e%2fvoid.ttl",
               b"/data/..\\x", b"/data/%5c..%5cx", b"/data//etc/passwd", b"/data/%2fetc%2fpasswd",
               b"/data/" + name + b"/../x", b"/data/" + name + b"/%2e%2e/void.ttl", b"/data/%2E%2E/%2E%2E/etc/passwd",
               b"/data/" + name + b"%2fvoid.ttl",  # an encoded slash is no separator
               b"/data/.%2e/current", b"/data/./void.ttl", b"/data/..%5cpyproject.toml", b"/data/%252e%252e/x",
               b"/static/../server.py", b"/static/%2e%2e/%2e%2e/settings.py", b"/static/..%2f..%2fserver.py"]
    for target in targets:
        status, _, body = get(server, target)
        assert status == 404, target
        assert b"[project]" not in body and b"root:x:" not in body and b"from __future__" not in body
    assert get(server, b"/data/void.ttl")[0] == 200 and get(server, b"/data/" + name + b"/void.ttl")[0] == 200


# ---------------------------------------------------------------- Range


def test_hostile_ranges_get_416_or_an_exact_small_answer(server):
    url = server.url + "/data/void.ttl"
    whole = httpx.get(url).content
    size = len(whole)

    def ask(value: str) -> httpx.Response:
        return httpx.get(url, headers={"Range": value})

    one = ask("bytes=10-19")
    assert (one.status_code, one.content, one.headers["content-range"]) == (206, whole[10:20], f"bytes 10-19/{size}")
    assert ask("bytes=-5").content == whole[-5:]
    assert ask("bytes=0-5,999999999-").content == whole[:6]  # the unsatisfiable range is dropped
    merged = ask("bytes=0-100,50-150,0-9,151-199")  # overlapping and adjacent: one range
    assert (merged.status_code, merged.content) == (206, whole[:200])
    # as many one-byte ranges as a header holds: more than 16 are ignored, the whole file, 200
    for many in (",".join(f"{i}-{i}" for i in range(200)), ",".join(f"{2 * i}-{2 * i}" for i in range(17)),
                 ",".join(["0-"] * 200)):
        answer = ask("bytes=" + many)
        assert (answer.status_code, answer.content) == (200, whole)
    parts = ask("bytes=" + ",".join(f"{3 * i}-{3 * i}" for i in range(16)))  # 16 are served, exactly
    assert parts.status_code == 206 and len(parts.content) < 16 * 200
    assert re.findall(rb"(?s)Content-Range: bytes (\d+)-\d+/\d+\r\n\r\n(.)", parts.content) == [
        (str(3 * i).encode(), whole[3 * i:3 * i + 1]) for i in range(16)]
    for absurd in ("bytes=999999999999-", f"bytes={size}-", "bytes=-0", "bytes=" + "9" * 4000 + "-",
                   "bytes=abc", "bytes=5-1", "bytes=", "bytes=0-1-2", "bytes=--5", "bytes=1_0-20", "bytes=+1-2"):
        answer = ask(absurd)
        assert answer.status_code == 416 and answer.content == b"", absurd
        assert answer.headers["content-range"] == f"bytes */{size}"
    assert (ask("items=0-5").status_code, ask("items=0-5").content) == (200, whole)  # a unit we do not know
    assert get(server, b"/data/void.ttl", "Range: bytes=٣-٥\r\n".encode())[0] == 416  # not ASCII digits


# ---------------------------------------------------------------- pipelining


def test_a_flood_of_pipelined_requests_costs_no_memory(server):
    def rss() -> int:
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024

    before = rss()
    floods = []
    for _ in range(20):  # measured: 73 MB more before requests waiting on one connection were bounded
        s = connect(server)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n" * 6000)
        floods.append(s)
    time.sleep(1)
    assert rss() - before < 20_000_000
    for s in floods:
        s.close()
    few = exchange(server, b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n" * 10
                   + b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert few.count(b"HTTP/1.1 200 OK") == 11  # a client that pipelines a few is answered


# ---------------------------------------------------------------- HEAD and OPTIONS on every route


def routes(server: Server) -> list[str]:
    name = edition(server)
    return ["/", "/data/measures", "/.well-known/void", "/sparql", ASK, "/search", "/search?q=%E6%9D%B1",
            "/browse/strategies", "/browse/bureaus", "/id/measure/1", "/doc/measure/1", "/doc/measure/1.ttl",
            "/def/lodpub", "/def/shapes.ttl", "/data/void.ttl", "/data/measures.nt", f"/data/{name}/void.ttl",
            "/changes", f"/changes/{name}", "/changes.atom", "/timemap/measure/1", "/timegate/measure/1",
            f"/memento/{name}/measure/1", "/health", "/static/yasgui/yasgui.min.js", "/id/measure/999999"]


def test_head_on_every_route_is_the_get_without_its_body(server):
    for path in routes(server):
        got, head = httpx.get(server.url + path), httpx.head(server.url + path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        if path != "/health":  # its counters move between the two
            assert head.headers.get("content-length") == got.headers.get("content-length"), path
            assert head.headers.get("etag") == got.headers.get("etag"), path


def test_options_on_every_route_says_what_is_allowed(server):
    for path in routes(server):
        plain = httpx.options(server.url + path)
        assert plain.status_code == 204 and plain.content == b"", path
        allowed = {m.strip() for m in plain.headers["allow"].split(",")}
        assert {"GET", "HEAD", "OPTIONS"} <= allowed and ("POST" in allowed) == path.startswith("/sparql"), path
        preflight = httpx.options(server.url + path, headers={"Origin": "https://example.org",
                                                             "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200, path
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "POST" in preflight.headers["access-control-allow-methods"]
    assert httpx.options(server.url + "/no/such/page").status_code == 404
    status, headers, _ = get(server, b"*", method=b"OPTIONS")  # the server as a whole
    assert status == 204 and "POST" in headers["allow"]

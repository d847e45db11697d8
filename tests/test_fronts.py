"""Stateless fronts: two ``lodpub serve`` processes on one published tree behind a real nginx (TLS, round robin,
the committed deploy/nginx.conf) give the same answers and the same ETags whichever answered, revalidate each
other's ETags, and hold nothing the other needs: one stops and every request is still answered."""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import replace
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from lodpub.serving import caching
from lodpub.settings import Settings
from test_editions import build_into, seed_with

from conftest import ROOT, Server, free_port, row

CONFIG = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PUBLIC = "https://lodpub.example"
RDFS = "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
LP = "PREFIX lp: <https://lodpub.example/def/lodpub#>\n"
ORDERED = "SELECT ?s ?p ?o WHERE { ?s ?p ?o } ORDER BY ?s ?p ?o LIMIT 80"  # over 4 KB: gzipped if accepted
UNORDERED = LP + RDFS + "SELECT ?m ?name WHERE { ?m a lp:Measure ; rdfs:label ?name } LIMIT 60"
GRAPH = LP + RDFS + "CONSTRUCT { ?m rdfs:label ?name } WHERE { ?m a lp:Measure ; rdfs:label ?name } LIMIT 20"
# The same settings that shape answers, not the same sizes: the ETags must not depend on how a front runs.
SHAPING = {"LODPUB_QUERY_TIMEOUT": "5", "LODPUB_MAX_ROWS": "100", "LODPUB_PAGE_SIZE": "5", "LODPUB_CLIENT_QUERIES": "0",
           "LODPUB_COLUMNAR_WORKERS": "0"}
SIZES = ({"LODPUB_WORKERS": "1", "LODPUB_MEMORY_WORKERS": "0", "LODPUB_RESULT_CACHE_MB": "0"},
         {"LODPUB_WORKERS": "2", "LODPUB_MEMORY_WORKERS": "1"})


# ------------------------------------------------------------------ the rule itself

def test_the_etag_rule_counts_what_shapes_an_answer_and_nothing_else():
    tags = caching.Tags(Settings())
    what = caching.representation("/sparql", {"query": ["ASK {}"], "format": ["json"]}, "application/json", "gzip")
    etag = tags.etag("0123456789ab", what)
    assert re.fullmatch(r'W/"0123456789ab-[0-9a-f]{20}"', etag)
    # Another front, sized otherwise, reading another store, with its own credentials: the same ETag.
    other = Settings(workers=7, memory_workers=3, port=9999, host="10.0.0.2", store="http://store/sparql",
                     store_password="secret", result_cache_mb=0, client_queries=0)
    assert caching.Tags(other).etag("0123456789ab", what) == etag
    assert b"secret" not in caching.Tags(other).seed
    # What the answer is: the edition, the parameters (not their order across names), format, coding, language.
    assert tags.etag("ba9876543210", what) != etag
    assert tags.etag("0123456789ab", caching.representation(
        "/sparql", {"format": ["json"], "query": ["ASK {}"]}, "application/json", "gzip")) == etag
    for changed in (caching.representation("/sparql", {"query": ["ASK {}"], "format": ["json"]}, "application/json",
                                           "identity"),
                    caching.representation("/sparql", {"query": ["ASK { }"], "format": ["json"]}, "application/json",
                                           "gzip"),
                    caching.representation("/sparql", {"query": ["ASK {}"], "format": ["xml"]},
                                           "application/sparql-results+xml", "gzip"),
                    caching.representation("/doc/measure/1", {}, "text/html", "identity", "en")):
        assert tags.etag("0123456789ab", changed) != etag
    page = caching.representation("/browse/bureaus", {"page": ["2", "3"]}, "text/html", "identity", "ja")
    assert caching.representation("/browse/bureaus", {"page": ["3", "2"]}, "text/html", "identity", "ja") != page
    assert caching.representation("/browse/bureaus", {}, "text/html", "identity", "en") != \
        caching.representation("/browse/bureaus", {}, "text/html", "identity", "ja")
    # Settings that shape answers, and lodpub's release, do count.
    for shaping in (replace(Settings(), max_rows=5), replace(Settings(), page_size=9),
                    replace(Settings(), base_iri="https://data.example/"), replace(Settings(), title_en="Other")):
        assert caching.Tags(shaping).etag("0123456789ab", what) != etag


def test_if_none_match_is_read_as_a_list_of_entity_tags():
    etag = 'W/"0123456789ab-00"'
    for field, named in (('W/"0123456789ab-00"', True), ('"0123456789ab-00"', True), ("*", True),
                         ('"x", W/"0123456789ab-00"', True), ('"x",, "0123456789ab-00" ', True),
                         ('"a,b", "0123456789ab-00"', True), ('"x"', False), ("0123456789ab-00", False),
                         ('"0123456789ab-00', False), ("", False), (",", False)):
        assert caching.matches(field, etag) is named, field
    assert not caching.matches("*", etag, star=False)


# ------------------------------------------------------------------ two fronts behind nginx

def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made here (openssl), for nginx's TLS."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class Nginx:
    """nginx as its own instance, on free loopback ports, running deploy/nginx.conf with its placeholders filled
    in, inside a main configuration of the test's own (as Debian's /etc/nginx/nginx.conf includes conf.d/)."""

    def __init__(self, directory: Path, fronts: list[str]):
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = _certificate(directory)
        self.http_port, self.https_port = free_port(), free_port()
        filled = CONFIG.read_text(encoding="utf-8")
        for name, value in {
                "FRONTS": " ".join(f"server {front} max_fails=1 fail_timeout=30s;" for front in fronts),
                "LISTEN_HTTP": f"127.0.0.1:{self.http_port}", "LISTEN_HTTPS": f"127.0.0.1:{self.https_port}",
                "SERVER_NAME": "127.0.0.1", "PUBLIC": PUBLIC, "CERTIFICATE": str(cert),
                "CERTIFICATE_KEY": str(key)}.items():
            filled = filled.replace(f"@{name}@", value)
        code = "\n".join(line.split("#", 1)[0] for line in filled.splitlines())
        assert not re.search(r"@[A-Z_]+@", code), "a placeholder of deploy/nginx.conf is not filled in"
        (directory / "lodpub.conf").write_text(filled, encoding="utf-8")
        # As root, nginx's workers would run as nobody, who cannot enter the test's private directory.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        temp = " ".join(f"{kind}_temp_path {directory / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                             "uwsgi", "scgi"))
        (directory / "nginx.conf").write_text(f"""{user}
worker_processes 1;
pid {directory / 'nginx.pid'};
error_log {directory / 'error.log'} notice;
events {{ worker_connections 256; }}
http {{
    access_log {directory / 'access.log'};
    {temp}
    include {directory / 'lodpub.conf'};
}}
""", encoding="utf-8")
        self.log = directory / "error.log"
        with open(directory / "stderr.log", "wb") as stderr:  # a file: a pipe nobody reads could fill
            self.process = subprocess.Popen([NGINX, "-c", str(directory / "nginx.conf"), "-p", str(directory),
                                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=stderr)
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.tls = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(directory / 'stderr.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("nginx did not listen within 20 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def fronts(served_dist, tmp_path_factory):
    """Two fronts on the same published tree, sized otherwise, behind nginx; and a client of nginx."""
    for needed in (NGINX, "openssl"):
        if not shutil.which(needed):
            pytest.fail(f"Debian's {Path(needed).name} is not installed (make browser installs it with apt-get)")
    started = [Server(served_dist, {**SHAPING, **size}) for size in SIZES]
    proxy = None
    try:
        proxy = Nginx(tmp_path_factory.mktemp("nginx"), [f"127.0.0.1:{s.port}" for s in started])
        # A client that keeps no cookie: the language one a ?lang= sets would change every later page's.
        jar = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
        with httpx.Client(base_url=proxy.url, verify=proxy.tls, timeout=30, cookies=jar) as client:
            yield started, proxy, client
    finally:
        if proxy is not None:
            proxy.stop()
        for server in started:
            if server.process.poll() is None:
                server.stop()


def front_of(response: httpx.Response, fronts: list[Server]) -> int:
    """Which front answered a request through nginx (nginx's ``$upstream_addr``; the last one it tried)."""
    tried = response.headers["lodpub-front"].split(",")[-1].strip()
    return next(n for n, server in enumerate(fronts) if tried == f"127.0.0.1:{server.port}")


def rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"))))


def triples(body: bytes) -> set[str]:
    return {str(t) for t in ox.parse(body, format=ox.RdfFormat.TURTLE)}


def json_rows(body: bytes) -> list[str]:
    return sorted(json.dumps(b, sort_keys=True) for b in json.loads(body)["results"]["bindings"])


# (what, path, parameters, headers, how its bodies compare: the bytes, or what SPARQL fixes of them)
KINDS = [
    ("SELECT in JSON, ordered", "/sparql", {"query": ORDERED}, {"Accept": "application/sparql-results+json",
                                                                  "Accept-Encoding": "identity"}, bytes),
    ("SELECT in CSV, ordered", "/sparql", {"query": ORDERED, "format": "csv"}, {"Accept-Encoding": "identity"}, bytes),
    ("SELECT in JSON, gzipped", "/sparql", {"query": ORDERED}, {"Accept": "application/sparql-results+json",
                                                                  "Accept-Encoding": "gzip"}, bytes),
    ("SELECT in no fixed order", "/sparql", {"query": UNORDERED}, {"Accept": "application/sparql-results+json"},
     json_rows),
    ("CONSTRUCT", "/sparql", {"query": GRAPH}, {"Accept": "text/turtle"}, triples),
    ("a resource document in Turtle", "/doc/measure/4", {}, {"Accept": "text/turtle"}, bytes),
    ("a resource document in HTML", "/doc/measure/4", {}, {"Accept": "text/html"}, bytes),
    ("a resource page in English", "/doc/unit/3", {"lang": "en"}, {}, bytes),
    ("a page", "/browse/bureaus", {}, {}, bytes),
    ("a page in English, by Accept-Language", "/browse/bureaus", {}, {"Accept-Language": "en"}, bytes),
    ("the editions", "/changes", {}, {"Accept": "application/json"}, bytes),
    ("the dataset description in Turtle", "/", {}, {"Accept": "text/turtle"}, bytes),
    ("the dataset description in JSON-LD", "/data/measures", {}, {"Accept": "application/ld+json"}, bytes),
    ("the landing page", "/", {}, {"Accept": "text/html"}, bytes),
    ("a download", "/data/measures.nt", {}, {"Accept-Encoding": "identity"}, bytes),
    ("a download, gzipped", "/data/measures.nt", {}, {"Accept-Encoding": "gzip"}, bytes),
]
IDS = [kind[0] for kind in KINDS]


def test_every_kind_of_answer_is_the_same_from_either_front(fronts):
    servers, _, client = fronts
    etags: dict[str, str] = {}
    varies: dict[str, set[str]] = {}
    for what, path, params, headers, compared in KINDS:
        seen: dict[int, httpx.Response] = {}
        for _ in range(4):  # round robin: each front answers some of them
            response = client.get(path, params=params, headers=headers)
            assert response.status_code == 200, (what, response.text)
            seen.setdefault(front_of(response, servers), response)
        assert sorted(seen) == [0, 1], f"{what}: answered by front {sorted(seen)} only"
        first, second = seen[0], seen[1]
        for header in ("etag", "cache-control", "vary", "content-type", "content-encoding", "lodpub-edition"):
            assert first.headers.get(header) == second.headers.get(header), (what, header)
        assert compared(first.content) == compared(second.content), what
        assert first.headers["etag"] and first.headers["cache-control"] == caching.CURRENT, what
        etags[what] = first.headers["etag"]
        varies[what] = {name.strip() for name in first.headers["vary"].split(",")}
    assert len(set(etags.values())) == len(etags), "two answers share an ETag"
    for what, chosen_by in (("a resource document in HTML", {"Accept", "Accept-Language", "Cookie"}),
                            ("a resource document in Turtle", {"Accept"}), ("a page", {"Accept-Language", "Cookie"}),
                            ("the dataset description in Turtle", {"Accept", "Accept-Encoding"}),
                            ("SELECT in CSV, ordered", {"Accept", "Accept-Encoding"}), ("a download", {"Accept-Encoding"})):
        assert chosen_by <= varies[what], (what, varies[what])  # what chose the answer, for a cache to key on
    assert not etags["a download"].startswith("W/") and etags["a download"] != etags["a download, gzipped"]
    assert etags["SELECT in JSON, ordered"].startswith(f'W/"{first.headers["lodpub-edition"]}-')
    gzipped = client.get("/sparql", params={"query": ORDERED}, headers={"Accept": "application/sparql-results+json",
                                                                        "Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"  # large enough to be: its ETag is not the plain one's
    assert gzipped.headers["etag"] == etags["SELECT in JSON, gzipped"] != etags["SELECT in JSON, ordered"]


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_an_etag_one_front_gave_is_revalidated_by_the_other(fronts, kind):
    servers, _, client = fronts
    what, path, params, headers, _ = kind
    given = client.get(path, params=params, headers=headers)
    giver = front_of(given, servers)
    for _ in range(4):
        again = client.get(path, params=params, headers={**headers, "If-None-Match": given.headers["etag"]})
        if front_of(again, servers) != giver:
            break
    else:
        pytest.fail(f"{what}: the other front never answered")
    assert again.status_code == 304 and again.content == b"", what
    for header in ("etag", "cache-control", "vary", "lodpub-edition"):
        assert again.headers.get(header) == given.headers.get(header), (what, header)
    assert "content-length" not in again.headers or again.headers["content-length"] == "0"
    head = client.head(path, params=params, headers={**headers, "If-None-Match": given.headers["etag"]})
    assert head.status_code == 304 and head.headers["etag"] == given.headers["etag"]
    stale = client.get(path, params=params, headers={**headers, "If-None-Match": 'W/"000000000000-00"'})
    assert stale.status_code == 200 and stale.headers["etag"] == given.headers["etag"]


def test_a_front_revalidates_a_query_it_never_ran_without_running_it(fronts):
    """What a CDN revalidating wants: the ETag names the answer, so a front that never saw the query answers 304
    at once, evaluating nothing (its /metrics count every query evaluated, wherever it ran)."""
    servers, _, client = fronts
    query = ORDERED + f"\n# asked once, at {time.time_ns()}"
    given = client.get("/sparql", params={"query": query})
    other = servers[1 - front_of(given, servers)]
    before = evaluated(other)
    for _ in range(4):
        again = client.get("/sparql", params={"query": query}, headers={"If-None-Match": given.headers["etag"]})
        if servers[front_of(again, servers)] is other:
            break
    assert servers[front_of(again, servers)] is other and again.status_code == 304
    assert evaluated(other) == before
    answered = httpx.get(other.url + "/sparql", params={"query": query})  # and had it run it: the same ETag
    assert answered.status_code == 200 and answered.headers["etag"] == given.headers["etag"]
    assert evaluated(other) == before + 1


def evaluated(server: Server) -> float:
    """How many queries ``server`` has evaluated, from its /metrics (loopback may read them)."""
    counts = re.findall(r"^lodpub_query_seconds_count\{[^}]*\} (\S+)$", httpx.get(server.url + "/metrics").text, re.M)
    return sum(float(c) for c in counts)


def test_errors_and_what_operators_read_are_never_stored(fronts):
    _, _, client = fronts
    for path, params in (("/doc/measure/999999", {}), ("/sparql", {"query": "SELECT ?x WHERE { ?x"}),
                         ("/sparql", {"query": "SELECT * WHERE { SERVICE <http://x.example/> { ?s ?p ?o } }"}),
                         ("/id/measure/3", {}), ("/health", {}), ("/doc/measure/1/..%2F", {})):
        response = client.get(path, params=params)
        assert response.headers["cache-control"] == caching.NO_STORE, (path, response.status_code)
        assert "etag" not in response.headers, path
    assert client.get("/metrics").status_code == 404  # nginx passes it on to no one (lodpub sees loopback)
    redirected = httpx.get(f"http://127.0.0.1:{fronts[1].http_port}/doc/measure/1?lang=en")
    assert redirected.status_code == 301 and redirected.headers["location"] == f"{PUBLIC}/doc/measure/1?lang=en"


def test_one_front_stopped_and_every_request_is_still_answered(fronts):
    """Nothing one front holds is needed by the other: stopped, its requests go to the other (nginx's
    proxy_next_upstream), with the same ETags. (Last in this module: the front stays stopped.)"""
    servers, _, client = fronts
    before = {what: client.get(path, params=params, headers=headers).headers["etag"]
              for what, path, params, headers, _ in KINDS}
    servers[1].stop()
    for _ in range(2):
        for what, path, params, headers, _ in KINDS:
            response = client.get(path, params=params, headers=headers)
            assert response.status_code == 200, (what, response.text)
            assert front_of(response, servers) == 0 and response.headers["etag"] == before[what], what
    posted = client.post("/sparql", data={"query": ORDERED}, headers={"Accept": "text/csv"})
    assert posted.status_code == 200 and rows(posted.content)[0] == ["s", "p", "o"]


# ------------------------------------------------------------------ rolling an edition across fronts

def _copy(tree: Path, to: Path, pointer: bool) -> None:
    """What README "Deployment" does with rsync: every edition and link of ``tree`` that ``to`` lacks (the
    pointer excepted), or (``pointer``) the pointer alone, replaced in one rename made beside the tree."""
    if pointer:
        staged = to.parent / ".dist-pointer"
        staged.symlink_to(os.readlink(tree / "current"))
        staged.replace(to / "current")
        return
    for path in tree.iterdir():
        if path.name != "current" and not os.path.lexists(to / path.name):
            if path.is_symlink():
                (to / path.name).symlink_to(os.readlink(path))
            else:
                shutil.copytree(path, to / path.name)


def wait_for(server: Server, edition: str) -> None:
    deadline = time.monotonic() + 60
    while httpx.get(server.url + "/health").json()["edition"] != edition:
        assert time.monotonic() < deadline, f"front did not switch to {edition}"
        time.sleep(0.1)


def test_a_new_edition_rolls_across_fronts_on_copies_of_the_tree(served_dist, tmp_path):
    """README "Deployment": fronts on their own copies, ``follow_pointer = false``; the new edition copied, the
    pointer moved, then SIGHUP. Until every front has switched, each answers its own edition with that edition's
    ETags (no cache can take one for the other); then they agree again."""
    build, trees = tmp_path / "build" / "dist", [tmp_path / name / "dist" for name in ("a", "b")]
    for tree in (build, *trees):
        shutil.copytree(served_dist, tree, symlinks=True)
    env = {**SHAPING, **SIZES[0], "LODPUB_FOLLOW_POINTER": "false"}
    servers = [Server(tree, env) for tree in trees]
    try:
        old = httpx.get(servers[0].url + "/doc/measure/4", headers={"Accept": "text/turtle"})
        new_edition = build_into(build, seed_with(row(name="巡回する新しい施策")), epoch=1_800_000_000)
        for tree in trees:
            _copy(build, tree, pointer=False)
        for tree in trees:
            _copy(build, tree, pointer=True)
        time.sleep(2.5)  # longer than a front looks at its tree when it does: these do not
        assert [httpx.get(s.url + "/health").json()["edition"] for s in servers] == [old.headers["lodpub-edition"]] * 2
        servers[0].process.send_signal(signal.SIGHUP)
        wait_for(servers[0], new_edition)
        answers = [httpx.get(s.url + "/doc/measure/4", headers={"Accept": "text/turtle"}) for s in servers]
        assert [a.headers["lodpub-edition"] for a in answers] == [new_edition, old.headers["lodpub-edition"]]
        assert answers[1].headers["etag"] == old.headers["etag"] != answers[0].headers["etag"]
        assert httpx.get(servers[0].url + "/doc/measure/4", headers={"Accept": "text/turtle",
                                                                     "If-None-Match": old.headers["etag"]}).status_code == 200
        servers[1].process.send_signal(signal.SIGHUP)
        wait_for(servers[1], new_edition)
        answers = [httpx.get(s.url + "/doc/measure/4", headers={"Accept": "text/turtle"}) for s in servers]
        assert answers[0].headers["etag"] == answers[1].headers["etag"] and answers[0].content == answers[1].content
        found = [httpx.get(s.url + "/search", params={"q": "巡回する", "format": "json"}).json()["total"] for s in servers]
        assert found == [1, 1]
    finally:
        for server in servers:
            server.stop()

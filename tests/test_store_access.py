"""Reaching a store that sits behind an authenticating proxy, and what ``publish --to`` keeps there.

A real nginx (its own instance on loopback) stands in front of a real, writable Oxigraph server: basic
authentication (an htpasswd file, ``openssl passwd -apr1``) on ``/basic/``, a bearer token on ``/bearer/`` (401
without one, 403 with another), and ``/small/`` behind the same basic authentication but refusing any body over
1 KB, so that a load fails after the credentials were taken. ``lodpub publish --to`` and ``lodpub serve --store``
run as a user runs them; the secrets are looked for in everything lodpub writes or answers.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from lodpub import published
from lodpub.pipeline.build import build
from lodpub.register import Register
from lodpub.settings import Settings
from stores import OXIGRAPH, free_port, stop, wait_for

from conftest import ROOT, Server, lodpub, row, table, write

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
USER = "lodpub-reader"
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?m a <https://lodpub.example/def/lodpub#Measure> }"
GRAPHS = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"
NGINX_CONF = """\
worker_processes 1;
{user}
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {work}/access.log;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  client_max_body_size 0;
  proxy_http_version 1.1;
  proxy_request_buffering off;
  server {{
    listen 127.0.0.1:{port};
    location /basic/ {{
      auth_basic "store";
      auth_basic_user_file {work}/htpasswd;
      proxy_pass http://127.0.0.1:{store}/;
    }}
    location /bearer/ {{
      if ($http_authorization = "") {{ return 401; }}
      if ($http_authorization != "Bearer {token}") {{ return 403; }}
      proxy_pass http://127.0.0.1:{store}/;
    }}
    location /small/ {{
      auth_basic "store";
      auth_basic_user_file {work}/htpasswd;
      client_max_body_size 1k;
      proxy_pass http://127.0.0.1:{store}/;
    }}
  }}
}}
"""


class Front:
    """Oxigraph's read-write server and nginx in front of it, with the secrets nginx asks for."""

    def __init__(self, work: Path):
        if not Path(NGINX).exists():
            pytest.fail("nginx is missing: `make test` installs Debian's nginx (apt-get install nginx)")
        self.password, self.token = "pw-" + secrets.token_hex(12), "tk-" + secrets.token_hex(12)
        self.work = work
        self.oxigraph: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None
        try:
            self._start(work)
        except BaseException:
            self.stop()  # what started, stopped: a failed start leaves no server behind
            raise

    def _start(self, work: Path) -> None:
        store_port, port = free_port(), free_port()
        self.oxigraph = subprocess.Popen([str(OXIGRAPH), "serve", "--location", str(work / "db"), "--bind",
                                          f"127.0.0.1:{store_port}"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        self.direct = f"http://127.0.0.1:{store_port}"
        wait_for(f"{self.direct}/query", self.oxigraph, "Oxigraph's server")
        hashed = subprocess.run(["openssl", "passwd", "-apr1", self.password], check=True, capture_output=True,
                                text=True).stdout.strip()
        (work / "htpasswd").write_text(f"{USER}:{hashed}\n")
        user = "user root root;" if os.geteuid() == 0 else ""  # its worker reads this test's private tmp dir
        (work / "nginx.conf").write_text(NGINX_CONF.format(work=work, port=port, store=store_port, token=self.token,
                                                           user=user))
        self.nginx = subprocess.Popen([NGINX, "-c", str(work / "nginx.conf"), "-p", str(work), "-e",
                                       str(work / "error.log"), "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(self.url + "/basic/query")
                break
            except httpx.HTTPError:
                if self.nginx.poll() is not None:
                    pytest.fail(f"nginx ended at start: {(work / 'error.log').read_text()}")
                time.sleep(0.1)
        else:
            pytest.fail("nginx did not answer within 30 s")

    def graphs(self) -> dict[str, int]:
        """Every named graph of the store and its triples, asked of Oxigraph directly."""
        answer = httpx.get(f"{self.direct}/query", params={"query": GRAPHS},
                           headers={"Accept": "application/sparql-results+json"})
        return {b["g"]["value"]: int(b["n"]["value"]) for b in answer.json()["results"]["bindings"]}

    def secrets(self) -> tuple[str, str]:
        return self.password, self.token

    def stop(self) -> None:
        for process in (self.nginx, self.oxigraph):
            if process is not None:
                stop(process)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    running = Front(tmp_path_factory.mktemp("front"))
    yield running
    running.stop()


def graph_of(name: str) -> str:
    return f"{Settings().dataset_iri}/{name}"


def serve_fails(dist: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``lodpub serve`` that is expected to refuse to start: its exit and what it said."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LODPUB_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "lodpub", "serve", "--dist", str(dist), "--port",
                           str(free_port())], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)


def no_secret(front: Front, *texts: str) -> None:
    for text in texts:
        for secret in front.secrets():
            assert secret not in text


def served_by_store(server: Server, front: Front) -> tuple[str, str, str]:
    """A query answered through the store, /health and /metrics of a server reading it."""
    answer = httpx.get(f"{server.url}/sparql", params={"query": COUNT})
    assert answer.status_code == 200, answer.text
    health = httpx.get(f"{server.url}/health")
    assert health.json()["store"].startswith(front.url)
    return answer.text, health.text, httpx.get(f"{server.url}/metrics").text


def test_basic_credentials_from_lodpub_toml_load_and_serve_through_the_proxy(served_dist, front, tmp_path):
    config = write(tmp_path / "lodpub.toml", f'[serving]\nstore = "{front.url}/basic/query"\n'
                                             f'store_user = "{USER}"\nstore_password = "{front.password}"\n')
    done = lodpub("publish", "--to", f"{front.url}/basic/store", "--dist", str(served_dist),
                  env={"LODPUB_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    name = published.current(served_dist)
    assert front.graphs()[graph_of(name)] > 0
    server = Server(served_dist, {"LODPUB_CONFIG": str(config), "LODPUB_WORKERS": "1"})
    try:
        answers = served_by_store(server, front)
        assert '"19"' in answers[0]
    finally:
        server.stop()
    no_secret(front, done.stdout, done.stderr, *answers, server.output())
    logged = (front.work / "access.log").read_text()
    assert f"{USER} " in logged and "PUT /basic/store" in logged and "GET /basic/query" in logged  # via nginx


def test_a_bearer_token_from_the_environment_loads_and_serves(served_dist, front):
    env = {"LODPUB_STORE": f"{front.url}/bearer/query", "LODPUB_STORE_TOKEN": front.token}
    done = lodpub("publish", "--to", f"{front.url}/bearer/store", "--dist", str(served_dist), env=env)
    assert done.returncode == 0, done.stderr
    server = Server(served_dist, {**env, "LODPUB_WORKERS": "1"})
    try:
        answers = served_by_store(server, front)
        assert '"19"' in answers[0]
    finally:
        server.stop()
    no_secret(front, done.stdout, done.stderr, *answers, server.output())
    assert "GET /bearer/query" in (front.work / "access.log").read_text()


@pytest.mark.parametrize("where, given, status", [
    ("basic", {}, "401 Unauthorized; lodpub sent no credentials"),
    ("basic", {"LODPUB_STORE_USER": USER, "LODPUB_STORE_PASSWORD": "wrong-" + "pw"}, "401 Unauthorized; lodpub "
     f"sent basic credentials for the user '{USER}'"),
    ("bearer", {}, "401 Unauthorized; lodpub sent no credentials"),
    ("bearer", {"LODPUB_STORE_TOKEN": "wrong-" + "tk"}, "403 Forbidden; lodpub sent a bearer token"),
])
def test_wrong_or_missing_credentials_say_so_in_a_line_at_publish_and_at_serve(served_dist, front, where, given,
                                                                               status):
    before = front.graphs()
    for command, store in (("publish", f"{front.url}/{where}/store"), ("serve", f"{front.url}/{where}/query")):
        if command == "publish":
            done = lodpub("publish", "--to", store, "--dist", str(served_dist), env=given)
        else:
            done = serve_fails(served_dist, {**given, "LODPUB_STORE": store})
        said = done.stderr.strip()
        assert done.returncode == 1, (command, done.stdout, said)
        assert len(said.splitlines()) == 1 and "Traceback" not in said, said
        assert said.startswith(f"lodpub: {store}: authentication to the store failed ({status}): set store_user "
                               "and store_password (basic) or store_token (bearer)"), said
        assert "LODPUB_STORE_TOKEN" in said
        no_secret(front, said, done.stdout)
        for value in given.values():
            if value.startswith("wrong-"):
                assert value not in said
    assert front.graphs() == before  # a refused load changed nothing


def test_a_password_written_into_the_store_url_is_never_shown(served_dist, front):
    door = front.url.replace("http://", f"http://{USER}:{front.password}@")
    done = lodpub("publish", "--to", f"{door}/basic/store", "--dist", str(served_dist))
    assert done.returncode == 0, done.stderr
    assert f"{USER}:***@" in done.stdout
    server = Server(served_dist, {"LODPUB_STORE": f"{door}/basic/query", "LODPUB_WORKERS": "1"})
    try:
        answer = httpx.get(f"{server.url}/sparql", params={"query": COUNT})
        health = httpx.get(f"{server.url}/health").json()
        metrics = httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    assert answer.status_code == 200 and health["store"] == f"{door.replace(front.password, '***')}/basic/query"
    no_secret(front, done.stdout, done.stderr, answer.text, str(health), metrics, server.output())


def test_a_server_reading_a_store_builds_only_the_search_index(served_dist, front, tmp_path):
    env = {"LODPUB_STORE": f"{front.url}/bearer/query", "LODPUB_STORE_TOKEN": front.token,
           "LODPUB_CACHE_DIR": str(tmp_path / "caches")}
    assert lodpub("publish", "--to", f"{front.url}/bearer/store", "--dist", str(served_dist),
                  env=env).returncode == 0
    server = Server(served_dist, env)
    try:
        found = httpx.get(f"{server.url}/search", params={"q": "事業", "format": "json"})
    finally:
        server.stop()
    assert found.status_code == 200 and found.json()["total"] > 0
    cache = tmp_path / "caches" / published.current(served_dist)
    assert (cache / "search.sqlite").is_file()
    assert not (cache / "store").exists() and [p.name for p in cache.iterdir()] == ["search.sqlite"]


class Reader(threading.Thread):
    """A client asking a server how many measures there are, again and again, until told to stop."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.seen, self.done = url, [], threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.done.is_set():
                answer = client.get(f"{self.url}/sparql", params={"query": COUNT})
                count = answer.json()["results"]["bindings"][0]["n"]["value"] if answer.status_code == 200 else ""
                self.seen.append((answer.status_code, answer.headers.get("lodpub-edition"), count))
                time.sleep(0.05)

    def until(self, edition: str, seconds: float = 60) -> None:
        """Wait until the answers come from ``edition`` (the server has switched to it), or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        while not (self.seen and self.seen[-1][1] == edition) and time.monotonic() < deadline:
            time.sleep(0.1)


def test_publish_keeps_the_graphs_the_tree_keeps_and_the_previous_one_and_readers_never_miss_one(front, tmp_path):
    credentials = {"LODPUB_STORE": f"{front.url}/basic/query", "LODPUB_STORE_USER": USER,
                   "LODPUB_STORE_PASSWORD": front.password}
    dist, register = tmp_path / "dist", Register.load(tmp_path / "register.tsv")
    measures: dict[str, int] = {}

    def edition(count: int, keep: int) -> str:
        text = table(*(row(name=f"保持施策{n}", summary=f"概要{n}。") for n in range(count)))
        build([write(tmp_path / f"table-{count}.txt", text)], dist, Settings(keep_editions=keep), register,
              workers=1)
        measures[published.current(dist)] = count
        return published.current(dist)

    def publish(to: str = "basic", query: bool = True) -> subprocess.CompletedProcess:
        """``query``: whether publish knows the store's query endpoint (else it deletes each graph it would drop,
        and lists those that were there)."""
        env = credentials if query else {k: v for k, v in credentials.items() if k != "LODPUB_STORE"}
        return lodpub("publish", "--to", f"{front.url}/{to}/store", "--dist", str(dist), env=env)

    first = edition(1, keep=2)
    assert publish().stdout.splitlines()[1] == f"the store keeps editions {first}; dropped: none"
    second = edition(2, keep=2)
    assert publish().stdout.splitlines()[1] == f"the store keeps editions {second}, {first}; dropped: none"
    server = Server(dist, {**credentials, "LODPUB_WORKERS": "1", "LODPUB_RESULT_CACHE_MB": "0"})
    reader = Reader(server.url)
    reader.start()
    try:
        third = edition(3, keep=2)  # the tree drops the first edition; the server stays on the second
        assert sorted(published.editions(dist)) == sorted([second, third])
        before = front.graphs()
        failed = publish("small")  # the proxy refuses the dump: a load that fails after the credentials passed
        assert failed.returncode == 1 and "refused the edition (413" in failed.stderr, failed.stderr
        assert front.graphs() == before and {graph_of(first), graph_of(second)} <= set(before)
        assert graph_of(third) not in before
        done = publish()
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[1] == f"the store keeps editions {third}, {second}; dropped: {first}"
        reader.until(third)
        fourth = edition(4, keep=1)  # the tree keeps only the current edition; the store the previous one too
        done = publish(query=False)
        assert done.stdout.splitlines()[1] == f"the store keeps editions {fourth}, {third}; dropped: {second}"
        reader.until(fourth)
    finally:
        reader.done.set()
        reader.join(timeout=30)
        server.stop()
    held = {g for g in front.graphs() if g.rsplit("/", 1)[-1] in measures}
    assert held == {graph_of(third), graph_of(fourth)}
    assert reader.seen and all(status == 200 for status, _, _ in reader.seen), reader.seen
    assert all(count == str(measures[edition]) for _, edition, count in reader.seen)  # never an empty graph
    assert [e for e in (second, third, fourth) if e in {edition for _, edition, _ in reader.seen}] == \
        [second, third, fourth]
    no_secret(front, server.output())

"""Editions: each build an immutable edition named by its content, a pointer swapped atomically, retention,
caches outside the tree; and a running server that moves to each new edition without failing a request."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from lodpub.pipeline.build import build
from lodpub.problems import InputError
from lodpub.published import TreeError
from lodpub.register import Register
from lodpub.search import build_index
from lodpub.settings import Settings

from conftest import BASE, SEED, Server, files_of, free_port, lodpub, row


def seed_with(*extra: str) -> str:
    """The seed table with rows added at its end."""
    return SEED.read_text(encoding="utf-8").rstrip("\n") + "\n" + "".join(r + "\n" for r in extra)


def edition_of(dist: Path) -> str:
    return os.readlink(dist / "current")


def build_into(dist: Path, text: str, name: str = "table.txt", epoch: int | None = None, **settings) -> str:
    """Build ``text`` into ``dist`` with the CLI, as a publisher would; returns the edition now current."""
    source = dist.parent / name
    source.write_text(text, encoding="utf-8")
    env = {"SOURCE_DATE_EPOCH": str(epoch)} if epoch else {}
    env |= {f"LODPUB_{k.upper()}": str(v) for k, v in settings.items()}
    result = lodpub("build", "-q", str(source), "--out", str(dist), env=env)
    assert result.returncode == 0, result.stderr
    return edition_of(dist)


# ------------------------------------------------------------------ the tree

def test_each_build_is_an_edition_named_by_its_content_and_earlier_ones_never_change(tmp_path):
    dist = tmp_path / "dist"
    first = build_into(dist, seed_with(), epoch=1_700_000_000)
    before = files_of(dist / first)
    second = build_into(dist, seed_with(row(name="追加された施策")), epoch=1_700_100_000)
    assert second != first and len(second) == 12
    assert files_of(dist / first) == before  # an edition's files never change
    assert sorted(p.name for p in dist.iterdir() if p.is_dir() and not p.is_symlink()) == sorted([first, second])
    void = (dist / second / "void.ttl").read_text(encoding="utf-8")
    assert f"dcat:prev data:measures\\/{first}" in void and f'dcat:version "{second}"' in void
    assert (dist / "measures.nt").read_bytes() == (dist / second / "measures.nt").read_bytes()
    # The same tables after the same edition give the same name anywhere: the name is the content's hash.
    elsewhere = tmp_path / "elsewhere"
    assert build_into(elsewhere, seed_with(), epoch=1_700_000_000) == first
    assert build_into(elsewhere, seed_with(row(name="追加された施策")), epoch=1_700_100_000) == second
    assert files_of(elsewhere) == files_of(dist)


def test_a_build_that_changes_nothing_publishes_nothing(tmp_path):
    dist = tmp_path / "dist"
    first = build_into(dist, seed_with())
    before = files_of(dist)
    result = lodpub("build", str(tmp_path / "table.txt"), "--out", str(dist))
    assert result.returncode == 0
    assert result.stdout.startswith(f"{dist}/ unchanged: edition {first} already holds exactly these files")
    assert files_of(dist) == before
    import shutil
    shutil.rmtree(tmp_path / "dist.cache")  # caches lost (a fresh checkout of a committed tree): made again
    assert lodpub("build", str(tmp_path / "table.txt"), "--out", str(dist)).returncode == 0
    assert (tmp_path / "dist.cache" / first / "store" / "COMPLETE").exists() and files_of(dist) == before


def test_building_into_the_same_directory_keeps_its_iris_without_naming_a_register(tmp_path):
    dist = tmp_path / "dist"
    build_into(dist, seed_with())
    moved = seed_with(row(name="新しい施策"))  # and the seed's rows in another order:
    lines = moved.splitlines()
    moved = "\n".join(lines[:5] + list(reversed(lines[5:]))) + "\n"
    build_into(dist, moved)
    register = (dist / "register.tsv").read_text(encoding="utf-8")
    assert "measure\t21\tactive\t新しい施策" in register
    assert register.count("\tactive\t") == register.count("\n") - register.count("#") - 1  # nothing withdrawn


def test_a_register_that_lost_a_published_iri_is_refused(tmp_path):
    dist = tmp_path / "dist"
    build([SEED], dist, Settings(), Register(), workers=1)
    source = tmp_path / "seed.txt"
    source.write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(InputError) as raised:
        build([source], dist, Settings(), Register(path=tmp_path / "empty.tsv"), workers=1)
    [problem] = raised.value.problems
    assert problem.file == str(tmp_path / "empty.tsv")
    assert problem.message.startswith("44 IRIs already published are not in this register: strategy 1 (1), "
                                      "unit 1 (デジタルサービス局), unit 2 (デジタルサービス局 デジタルサービス推進部) "
                                      "and 41 more; copy their lines back from ")


def test_retention_keeps_the_newest_editions_and_their_caches(tmp_path):
    dist = tmp_path / "dist"
    names = [build_into(dist, seed_with(row(name=f"施策{n}")), keep_editions=2) for n in range(4)]
    assert sorted(p.name for p in dist.iterdir() if p.is_dir() and not p.is_symlink()) == sorted(names[-2:])
    assert edition_of(dist) == names[-1]
    assert sorted(p.name for p in (tmp_path / "dist.cache").iterdir()) == sorted(names[-2:])
    void = (dist / names[-1] / "void.ttl").read_text(encoding="utf-8")
    assert all(f'dcat:version "{name}"' in void for name in names)  # the history names them all


def test_what_a_killed_build_left_is_cleared_and_never_served(tmp_path):
    dist = tmp_path / "dist"
    first = build_into(dist, seed_with())
    (tmp_path / ".dist-new-abandoned").mkdir()  # a build killed while writing leaves its staging directory
    (tmp_path / ".dist-new-abandoned" / "measures.nt").write_text("half")
    second = build_into(dist, seed_with(row(name="後の施策")))
    assert not (tmp_path / ".dist-new-abandoned").exists()
    assert edition_of(dist) == second and (dist / first).is_dir()


def test_another_layout_or_a_concurrent_build_is_refused_clearly(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "measures.nt").write_text("")
    result = lodpub("build", str(SEED), "--out", str(old))
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"{old} holds files but no current edition (a layout older than "
                                          "editions, or not lodpub's): move it away or empty it, then build "
                                          "again; nothing was published")
    import fcntl
    with (tmp_path / ".busy.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(TreeError, match="another build is writing"):
            build([SEED], tmp_path / "busy", Settings(), Register(), workers=1)


def test_the_tree_is_served_as_it_is_by_a_static_web_server(tmp_path):
    dist = tmp_path / "dist"
    first = build_into(dist, seed_with())
    second = build_into(dist, seed_with(row(name="静的な施策")))
    port = free_port()
    static = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(dist)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.get(f"{url}/measures.nt").content == (dist / second / "measures.nt").read_bytes()
        assert httpx.get(f"{url}/{first}/measures.nt").content == (dist / first / "measures.nt").read_bytes()
        assert "静的な施策" in httpx.get(f"{url}/current/measures.ttl").text
    finally:
        static.terminate()
        static.wait()


# ------------------------------------------------------------------ republishing while serving

MARKER_QUERY = ('SELECT ?n WHERE { ?m <http://www.w3.org/2000/01/rdf-schema#label> ?n '
                'FILTER(STRSTARTS(STR(?n), "目印")) }')
# The same marker, at the cost of ~200,000 joined rows (tens of milliseconds): always answered by a worker.
HEAVY_QUERY = ('SELECT ?n (COUNT(*) AS ?c) WHERE { ?m <http://www.w3.org/2000/01/rdf-schema#label> ?n '
               'FILTER(STRSTARTS(STR(?n), "目印")) ?a ?b ?x . ?d ?e ?f } GROUP BY ?n')


class Load:
    """Clients that read SPARQL, a search page, the landing page and a dump in a loop, recording for each
    answer the edition it names and what its content says."""

    def __init__(self, url: str, clients: int = 6):
        self.url = url
        self.stop = threading.Event()
        self.seen: list[tuple[str, str, str]] = []  # (kind, edition header, what the content says)
        self.failures: list[str] = []
        self.not_modified: list[tuple[str, str]] = []  # (edition header, the ETag that was sent)
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def run(self, index: int) -> None:
        etag = None
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    kind = ("sparql", "search", "dump", "landing", "heavy", "heavy")[index % 6]
                    if kind in ("sparql", "heavy"):
                        query = MARKER_QUERY if kind == "sparql" else HEAVY_QUERY
                        r = client.get("/sparql", params={"query": query, "format": "json"})
                        said = ",".join(b["n"]["value"] for b in r.json()["results"]["bindings"])
                    elif kind == "search":
                        r = client.get("/search", params={"q": "目印", "format": "json"})
                        said = ",".join(hit["name"] for hit in r.json()["results"])
                    elif kind == "landing":
                        r = client.get("/", headers={"Accept": "text/html"})
                        said = r.headers["lodpub-edition"] if r.headers["lodpub-edition"] in r.text else "?"
                    else:
                        headers = {"Accept-Encoding": "identity"} | ({"If-None-Match": etag} if etag else {})
                        r = client.get("/data/measures.nt", headers=headers)
                        if r.status_code == 304:
                            self.not_modified.append((r.headers["lodpub-edition"], etag or ""))
                            continue
                        said = hashlib.sha256(r.content).hexdigest()
                        if r.headers["etag"] != f'"{said[:32]}"':
                            self.failures.append(f"ETag {r.headers['etag']} for bytes {said[:32]}")
                        etag = r.headers["etag"]
                    if r.status_code != 200:
                        self.failures.append(f"{kind}: {r.status_code} {r.text[:200]}")
                    self.seen.append((kind, r.headers["lodpub-edition"], said))
                except Exception as exc:  # a refused or broken connection is a failed request too
                    self.failures.append(f"{type(exc).__name__}: {exc}")


def wait_for_edition(url: str, edition: str, seconds: float = 30) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if httpx.get(url + "/health").json()["edition"] == edition:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"the server did not move to edition {edition} within {seconds} s")


def test_the_server_moves_to_each_new_edition_while_answering_every_request(tmp_path):
    dist = tmp_path / "dist"
    marker = {build_into(dist, seed_with(row(name="目印0")), epoch=1_700_000_000): "目印0"}
    server = Server(dist, {"LODPUB_WORKERS": "2", "LODPUB_RESULT_CACHE_MB": "0"})
    try:
        with Load(server.url) as load:
            time.sleep(1)
            for k in range(1, 6):  # five rebuilds, each with a changed table
                edition = build_into(dist, seed_with(row(name=f"目印{k}", summary=f"第{k}版。")),
                                     epoch=1_700_000_000 + k * 86_400)
                marker[edition] = f"目印{k}"
                wait_for_edition(server.url, edition)
                time.sleep(1)
        assert load.failures == []
        editions_seen = {edition for _, edition, _ in load.seen}
        assert editions_seen == set(marker), "every edition answered some requests"
        for kind, edition, said in load.seen:  # every answer comes from exactly one edition
            if kind in ("sparql", "heavy", "search"):
                assert said == marker[edition], (kind, edition, said)
            elif kind == "dump":
                assert said == hashlib.sha256((dist / edition / "measures.nt").read_bytes()).hexdigest()
            else:
                assert said == edition
        for edition, sent in load.not_modified:  # 304 only for the bytes that edition holds
            assert sent == f'"{hashlib.sha256((dist / edition / "measures.nt").read_bytes()).hexdigest()[:32]}"'
        assert len(load.seen) > 100
        first = next(iter(marker))
        old = httpx.get(f"{server.url}/data/{first}/measures.nt", headers={"Accept-Encoding": "identity"})
        assert old.content == (dist / first / "measures.nt").read_bytes()
        assert "目印0" in old.text and "目印5" not in old.text
        switches = [line for line in server.output().splitlines() if line.startswith('{"event": "edition"')]
        assert len(switches) == 5 and all('"warmed": 0}' not in line for line in switches)  # warmed up first
        workers = [p for p in _children(server.process.pid) if "forkserver" not in _cmdline(p)]
        assert len(workers) <= 3, "the workers of earlier editions have stopped"  # 2 and a resource tracker
    finally:
        server.stop()
    assert "Traceback" not in server.output()


def test_a_server_that_does_not_follow_the_pointer_switches_on_sighup_and_never_to_a_broken_edition(tmp_path):
    dist = tmp_path / "dist"
    first = build_into(dist, seed_with(row(name="目印0")))
    server = Server(dist, {"LODPUB_WORKERS": "1", "LODPUB_FOLLOW_POINTER": "false"})
    try:
        second = build_into(dist, seed_with(row(name="目印1")))
        time.sleep(1.5)
        assert httpx.get(server.url + "/health").json()["edition"] == first
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for_edition(server.url, second, 15)
        # An edition damaged on disk after it was built (lodpub never writes one like it):
        third = build_into(dist, seed_with(row(name="目印2")))
        (dist / third / "void.ttl").write_text("not turtle", encoding="utf-8")
        os.kill(server.process.pid, signal.SIGHUP)
        time.sleep(2)
        health = httpx.get(server.url + "/health").json()
        assert (health["edition"], health["switches"]) == (second, 1)
        assert f"cannot serve edition {third}" in server.output()
        answer = httpx.get(server.url + "/sparql", params={"query": MARKER_QUERY, "format": "json"})
        assert [b["n"]["value"] for b in answer.json()["results"]["bindings"]] == ["目印1"]
    finally:
        server.stop()


def test_a_pruned_edition_answers_410_and_an_unknown_one_404(tmp_path):
    dist = tmp_path / "dist"
    names = [build_into(dist, seed_with(row(name=f"目印{n}")), keep_editions=2) for n in range(3)]
    server = Server(dist, {"LODPUB_WORKERS": "1"})
    try:
        assert httpx.get(f"{server.url}/data/{names[0]}/measures.nt").status_code == 410
        kept = httpx.get(f"{server.url}/data/{names[1]}/measures.nt", headers={"Accept-Encoding": "identity"})
        assert kept.status_code == 200 and "目印1" in kept.text
        assert kept.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert httpx.get(f"{server.url}/data/0123456789ab/measures.nt").status_code == 404
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    found = [int(p) for p in out.split()]
    return found + [g for c in found for g in _children(c)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""



def test_a_table_that_does_not_build_leaves_the_current_edition_served_and_says_why(tmp_path):
    dist = tmp_path / "dist"
    good = build_into(dist, seed_with(row(name="目印0")))
    before = files_of(dist)
    server = Server(dist, {"LODPUB_WORKERS": "1"})
    try:
        bad = tmp_path / "bad.txt"
        bad.write_text(seed_with(row(name="目印1", phone="03-ABCD-EFGH")), encoding="utf-8")
        result = lodpub("build", str(bad), "--out", str(dist))
        assert result.returncode == 1
        line = len(seed_with().splitlines()) + 1
        assert result.stderr.splitlines()[0].startswith(f"{bad}:{line}:4: error: 連絡先:")
        assert "Traceback" not in result.stderr and result.stderr.strip().endswith("nothing was published")
        assert files_of(dist) == before
        time.sleep(1)
        assert httpx.get(server.url + "/health").json()["edition"] == good
    finally:
        server.stop()


def test_a_search_index_derived_from_the_last_edition_s_is_the_one_built_afresh(tmp_path):
    import sqlite3

    import pyoxigraph as ox
    dist = tmp_path / "dist"
    build_into(dist, seed_with())
    text = seed_with(row(name="あたらしい移住相談", summary="移住の相談を受け付ける。")).replace(
        "多摩の魅力発信プロジェクト", "多摩の魅力発信事業").replace("町村の地域課題を解決する", "町村の課題を解決する")
    second = build_into(dist, "\n".join(line for line in text.splitlines()
                                       if not line.startswith("多摩・島しょ移住・定住フェア")) + "\n")
    cache = tmp_path / "dist.cache" / second
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    store = ox.Store.read_only(str(cache / "store"))
    build_index(fresh, store, BASE, second)

    def rows(path):
        with sqlite3.connect(path) as db:
            return db.execute("SELECT id, iri, name, summary, former FROM measure ORDER BY id").fetchall()
    derived = rows(cache / "search.sqlite")
    assert derived == rows(fresh / "search.sqlite")
    assert any(r[2] == "多摩の魅力発信事業" and r[4] == "多摩の魅力発信プロジェクト" for r in derived)
    assert not any(r[2] == "多摩・島しょ移住・定住フェア" for r in derived)
    from lodpub.search import Search
    for query in ("移住", "魅力発信プロジェクト", "相談を受け付ける"):
        assert Search(cache / "search.sqlite").find(query) == Search(fresh / "search.sqlite").find(query)

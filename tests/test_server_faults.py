"""Faults while serving, with the real server: a query worker killed mid-query, the server stopped under load.

(Builds killed and disks filled are in test_faults.py.)
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time
from pathlib import Path

import httpx

from conftest import Server

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s a <https://lodpub.example/def/lodpub#Measure> }"
CARTESIAN = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (the query workers are children of multiprocessing's fork server)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def busiest(pids: set[int]) -> int:
    """The process among ``pids`` that used the most CPU over half a second: the one running a query."""
    before = {pid: cpu_ticks(pid) for pid in pids}
    time.sleep(0.5)
    return max(pids, key=lambda pid: cpu_ticks(pid) - before[pid])


def test_a_worker_killed_mid_query_gives_its_client_a_503_and_is_replaced_while_others_answer(served_dist):
    server = Server(served_dist, {"LODPUB_WORKERS": "3", "LODPUB_MEMORY_WORKERS": "0", "LODPUB_QUERY_TIMEOUT": "60",
                                  "LODPUB_RESULT_CACHE_MB": "0", "LODPUB_COLUMNAR_WORKERS": "0"})
    try:
        workers = descendants(server.process.pid)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            slow = pool.submit(httpx.get, f"{server.url}/sparql", params={"query": CARTESIAN}, timeout=90)
            time.sleep(1)
            victim = busiest(workers)
            quick_during = [pool.submit(httpx.get, f"{server.url}/sparql", params={"query": COUNT + f" # {i}"},
                                        timeout=30) for i in range(3)]
            os.kill(victim, signal.SIGKILL)
            killed = slow.result()
            answers = [f.result() for f in quick_during]
        assert killed.status_code == 503
        assert killed.headers["retry-after"] == "1"
        assert "worker stopped before answering" in killed.text and "Traceback" not in killed.text
        assert [(a.status_code, a.json()["results"]["bindings"][0]["n"]["value"]) for a in answers] == [(200, "19")] * 3
        for _ in range(100):  # replaced: three workers ready again, the killed one not among them
            health = httpx.get(f"{server.url}/health").json()
            if health["ready"] == {"disk": 3}:
                break
            time.sleep(0.1)
        assert health["ready"] == {"disk": 3} and health["replaced"] >= 1
        assert not alive(victim) and victim not in descendants(server.process.pid)
        assert httpx.get(f"{server.url}/sparql", params={"query": COUNT + " # after"}).status_code == 200
    finally:
        server.stop()
    log = server.output()
    assert '"event": "worker_lost"' in log and "Traceback" not in log and "never retrieved" not in log


def test_a_query_that_needs_more_memory_than_a_worker_may_use_gets_a_503_once_run_and_then_at_once(served_dist):
    greedy = ("SELECT (GROUP_CONCAT(CONCAT(STR(?a), STR(?b), STR(?c))) AS ?x) WHERE { ?a ?p ?o . ?b ?q ?r . "
              "?c ?t ?u . ?d ?v ?w }")  # ~10^12 rows of the seed's triples: gigabytes of text long before the limit
    server = Server(served_dist, {"LODPUB_WORKERS": "2", "LODPUB_MEMORY_WORKERS": "0", "LODPUB_QUERY_TIMEOUT": "300",
                                  "LODPUB_WORKER_MEMORY_MB": "256", "LODPUB_RESULT_CACHE_MB": "0",
                                  "LODPUB_COLUMNAR_WORKERS": "0"})
    try:
        first = httpx.get(f"{server.url}/sparql", params={"query": greedy}, timeout=400)
        again = httpx.get(f"{server.url}/sparql", params={"query": greedy}, timeout=400)
        after = httpx.get(f"{server.url}/sparql", params={"query": COUNT})
        health = httpx.get(f"{server.url}/health").json()
    finally:
        server.stop()
    assert (first.status_code, again.status_code) == (503, 503)
    # Ended by the cap (a timeout says otherwise), then refused without running (no second worker replaced).
    for answer in (first, again):
        assert "needed more memory than a worker may use (256 MiB)" in answer.text, answer.text
        assert "Traceback" not in answer.text
    assert after.status_code == 200 and after.json()["results"]["bindings"][0]["n"]["value"] == "19"
    assert health["too_big"] == 1 and health["replaced"] == 1
    log = server.output()
    assert '"exitcode": -6' in log and '"event": "query_refused"' in log and "never retrieved" not in log


def test_stopping_the_server_under_load_finishes_or_closes_every_request_and_leaves_no_process(served_dist):
    server = Server(served_dist, {"LODPUB_WORKERS": "2", "LODPUB_QUERY_TIMEOUT": "60"})
    children = descendants(server.process.pid)
    assert len(children) >= 3  # the fork server and its workers
    stop = threading.Event()
    outcomes: list[str] = []

    def client(path: str, params: dict[str, str] | None = None) -> None:
        with httpx.Client(timeout=30, headers={"Accept-Encoding": "identity"}) as http:
            while not stop.is_set():
                try:
                    response = http.get(server.url + path, params=params)
                    body = response.content  # read whole: a body cut short raises here
                    if int(response.headers.get("content-length", len(body))) != len(body):
                        outcomes.append("cut short")
                    else:
                        outcomes.append("answered" if response.status_code < 500 or response.status_code == 503
                                        else f"status {response.status_code}")
                except httpx.TransportError:
                    outcomes.append("closed")  # the server closed the connection: the client knows
                    return
    threads = [threading.Thread(target=client, args=args) for args in (
        ("/sparql", {"query": COUNT}), ("/sparql", {"query": CARTESIAN}), ("/doc/measure/1", None),
        ("/search", {"q": "東京"}), ("/data/measures.nt", None))]
    for thread in threads:
        thread.start()
    time.sleep(2)
    server.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = server.process.wait(timeout=30)
    took = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    server.stop()
    # uvicorn shuts down gracefully, then raises the signal it caught again, so that the exit says why
    assert code == -signal.SIGTERM
    assert took < 10  # uvicorn's 5 s of grace, then the workers are stopped
    assert outcomes.count("answered") > 10
    assert all(outcome in ("answered", "closed") for outcome in outcomes), set(outcomes)
    for _ in range(50):  # the fork server ends when it reads that the server has gone: a moment later
        left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children if alive(pid)}
        if not left:
            break
        time.sleep(0.1)
    assert left == {}
    log = server.output()
    assert "Traceback" not in log and "never retrieved" not in log, log[-3000:]

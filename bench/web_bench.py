#!/usr/bin/env python3
"""Web front figures: page weights, time to first byte, search latency, at the seed and at 100,000 measures.

Starts ``lodpub serve`` on a built dist/ (the project's, and a generated one) and prints:
the HTML weight of each kind of page, the median time to first byte of 20 requests for the
landing page and a measure page, and the median latency of 20 searches for a two-character and a
ten-character query. Figures are printed, never asserted.

    python bench/web_bench.py [--measures 100000] [--dist-large DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LODPUB_SHARED", ROOT.parent / "shared"))
PAGES = ("/", "/browse/strategies", "/browse/bureaus", "/doc/measure/1", "/doc/unit/3", "/doc/strategy/1",
         "/def/lodpub", "/sparql", "/search?q=%E7%A7%BB%E4%BD%8F")
HTML = {"Accept": "text/html", "Accept-Language": "ja", "Accept-Encoding": "identity"}
SHORT, LONG = "移住", "ワーケーション体験ツ"  # two and ten characters


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(dist: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "lodpub", "serve", "--dist", str(dist), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"lodpub serve did not start for {dist}")


def ttfb(client: httpx.Client, url: str, n: int = 20) -> float:
    """Median seconds from sending the request to having the response's headers."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        with client.stream("GET", url, headers=HTML) as response:
            times.append(time.perf_counter() - start)
            response.read()
    return statistics.median(times)


def latency(client: httpx.Client, url: str, params: dict, n: int = 20) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        client.get(url, params={**params, "_": str(i)}, headers={"Accept": "application/json"}).raise_for_status()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, dist: Path) -> None:
    process, url = serve(dist)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            print(f"\n## {name} ({dist})")
            print(f"{'page':40} {'HTML bytes':>11} {'first view ms':>14} {'TTFB ms (median of 20)':>23}")
            for path in PAGES:
                start = time.perf_counter()
                size = len(client.get(path, headers=HTML).content)
                first = time.perf_counter() - start
                print(f"{path:40} {size:>11,} {first * 1000:>14.1f} {ttfb(client, path) * 1000:>23.1f}")
            for query in (SHORT, LONG):
                hits = client.get("/search", params={"q": query}, headers={"Accept": "application/json"}).json()
                print(f"search {query!r} ({len(query)} characters, {hits['total']:,} hits): median of 20 "
                      f"{latency(client, '/search', {'q': query}) * 1000:.1f} ms")
    finally:
        process.terminate()
        process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measures", type=int, default=100_000)
    parser.add_argument("--dist-large", type=Path, default=None, help="a dist/ already built at that size")
    args = parser.parse_args()
    report("seed", ROOT / "dist")
    if args.dist_large:
        report(f"{args.measures:,} measures", args.dist_large)
        return
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "table.txt"
        subprocess.run([sys.executable, str(SHARED / "bench" / "gen_measures.py"), "--measures", str(args.measures),
                        "--strategies", "8", "--seed", "42", "-o", str(table)], check=True)
        subprocess.run([sys.executable, "-m", "lodpub", "build", str(table), "--out", f"{tmp}/dist", "-q"],
                       check=True, cwd=ROOT)
        report(f"{args.measures:,} measures", Path(tmp) / "dist")


if __name__ == "__main__":
    main()

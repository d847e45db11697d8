"""Fuzz the running server for longer than ``make test`` does: the strategies and checks of
tests/test_fuzz.py, a budget and a seed of your choosing, and every failure reported rather than the first.

    .venv/bin/python bench/fuzz.py [--examples 5000] [--seed 1] [--max-repeat 64] [--heavy] [--shrink]

It builds the seed table (one measure withdrawn, as the tests' ``served_dist``) in a temporary directory,
starts ``lodpub serve`` on it (2-second limit, two workers, no per-client cap), sends the generated requests
one after another and prints how many got each status, what was wrong with any answer (grouped, with the
first request that showed it), and whether the server still answered a trivial ASK with a clean log.
``--max-repeat`` lets a mutation repeat a fragment or nest brackets that many times (thousands overflow the
query parser's stack, which costs a worker each time); ``--heavy`` lets it add a pattern that runs a query
out of its time limit (2 s, and a worker, each time); ``--shrink`` then has hypothesis find the smallest
request showing the first failure. Exit status: 0 if nothing was wrong, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

import test_fuzz as fuzz  # noqa: E402

from conftest import served_tree  # noqa: E402


def kind_of(problem: str) -> str:
    """A problem without the particulars of its request, to group the same failure found many times."""
    return re.sub(r"\(.*|: .*|\d+ bytes", "", problem).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="requests to generate (default 5000)")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis' seed (default 1)")
    parser.add_argument("--max-repeat", type=int, default=64, help="most times a mutation repeats a fragment")
    parser.add_argument("--heavy", action="store_true", help="let mutations make queries that run out the limit")
    parser.add_argument("--shrink", action="store_true", help="then find the smallest request that fails")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lodpub-fuzz-") as tmp:
        print("building the seed table ...", file=sys.stderr)
        server = fuzz.fuzz_server(served_tree(Path(tmp)))
        http = fuzz.client()
        try:
            edition = http.get(server.url + "/health").json()["edition"]
            statuses: Counter[int] = Counter()
            kinds: Counter[str] = Counter()
            first: dict[str, tuple[fuzz.Fuzzed, int, list[str]]] = {}
            strategy = fuzz.requests(max_repeat=args.max_repeat, heavy=args.heavy)
            start = time.monotonic()

            @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @seed(args.seed)
            @given(strategy)
            def explore(fuzzed: fuzz.Fuzzed) -> None:
                if server.url in fuzz.DIED:
                    return  # nothing more to learn
                status, wrong = fuzz.exchange(http, server, fuzzed, edition)
                statuses[status] += 1
                for problem in wrong:
                    kinds[kind_of(problem)] += 1
                    first.setdefault(kind_of(problem), (fuzzed, status, wrong))

            explore()
            seconds = time.monotonic() - start
            sent = sum(statuses.values())
            print(f"{sent:,} requests in {seconds:.0f} s ({sent / seconds:.0f}/s), seed {args.seed}, "
                  f"max repeat {args.max_repeat}{', heavy' if args.heavy else ''}")
            print("by status: " + ", ".join(f"{status or 'no answer'}: {n:,}"
                                            for status, n in sorted(statuses.items())))
            if server.url in fuzz.DIED:
                code = server.process.returncode
                print(f"\nTHE SERVER DIED (exit status {code}{', SIGSEGV' if code == -11 else ''}) on: "
                      f"{fuzz.DIED[server.url]}\nthe end of its log:\n{server.output()[-1000:]}")
            for kind, n in kinds.most_common():
                fuzzed, status, wrong = first[kind]
                print(f"\nFAILURE ({n:,}×): {kind}\n  first: {fuzzed.describe()}\n  → {status}: {wrong}")

            if args.shrink and kinds:
                @settings(max_examples=args.examples, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                @seed(args.seed)
                @given(strategy)
                def shrink(fuzzed: fuzz.Fuzzed) -> None:
                    status, wrong = fuzz.exchange(http, server, fuzzed, edition)
                    assert not wrong, f"{fuzzed.describe()}\n→ {status}: {wrong}"

                try:
                    shrink()
                except AssertionError as exc:
                    print(f"\nSMALLEST FAILING REQUEST:\n{exc}")

            after = fuzz.healthy(http, server)
            print("\nafterwards: " + ("a trivial ASK answers true and the log is clean" if not after else
                                      "\n".join(after)))
            return 1 if kinds or after or server.url in fuzz.DIED else 0
        finally:
            http.close()
            server.stop()


if __name__ == "__main__":
    sys.exit(main())

"""What an edition's engine learned of its requests, kept across a restart.

The engine learns, request by request, which kind of worker answers each fastest and
whether the candidate engine may answer it (``engine.Known``). That knowledge is
per edition and the edition never changes, so it stays true for as long as the
edition is served; a restart (a deploy, a reboot) used to forget it, and each
request's first run after start was then its slowest (a new request runs on the
reference, and only after a check may the candidate answer it: 60× slower on a
CONSTRUCT over the unit chain at 100,000 measures).

So a server that stops keeps the requests its edition answered most recently (the
query and how it was asked, and its cost) in the edition's cache, and the next
server of that edition answers them for nobody before ``/health`` says ready: the
reference first, then the candidate checked against it, exactly as for a client.
What is kept is only a list of requests to warm: nothing of it is trusted. A
missing, unreadable or foreign file is a cold start, never a failed one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from lodpub.serving.worker import Request

VERSION = 1
log = logging.getLogger("lodpub")


def save(path: Path, requests: list[tuple[Request, float]]) -> None:
    """Keep ``requests`` (each with its cost in seconds) in ``path``, replacing what was there at once."""
    kept = [{"query": r.query, "fmt": r.fmt, "max_rows": r.max_rows, "max_bytes": r.max_bytes,
             "truncated_link": r.truncated_link, "prefixes": [list(p) for p in r.prefixes], "gzip": r.gzip,
             "cost": cost} for r, cost in requests]
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        temporary.write_text(json.dumps({"version": VERSION, "requests": kept}, ensure_ascii=False),
                             encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:  # a read-only or full cache costs the next start its warmth, nothing else
        log.warning("cannot keep the recent requests in %s (%s): the next start is cold", path, exc)
        with contextlib.suppress(OSError):
            temporary.unlink()


def load(path: Path) -> list[tuple[Request, float]]:
    """The requests kept in ``path``, newest first; none if there is no such file or it cannot be read."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept.get("version") != VERSION:
            return []
        return [(Request(k["query"], k["fmt"], int(k["max_rows"]), int(k["max_bytes"]), k["truncated_link"],
                         tuple((str(a), str(b)) for a, b in k["prefixes"]), bool(k["gzip"])), float(k["cost"]))
                for k in kept["requests"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("cannot read the recent requests in %s (%s): starting cold", path, exc)
        return []

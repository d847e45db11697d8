"""Which worker a request goes to: pure rules over what the engine has measured of it (``engine.Known``).

Each request goes to an idle worker of the kind it ran fastest on: once on each kind
(an edition does not change, so the same request does the same work), then on the
faster one. A kind is tried only while that cannot cost the request its answer, and
a request waits in the lane of its cost, so that a cheap one never waits behind a
heavy or unknown one (``pool.LANES``).
"""

from __future__ import annotations

from collections.abc import Sequence

from lodpub.serving import pool
from lodpub.serving.worker import DISK

# Lanes (pool.LANES): a request that ran within CHEAP_SECONDS never waits behind one that took HEAVY_SECONDS
# or more (or was stopped) or has never run; those two together hold at most all workers but one.
CHEAP_SECONDS = 0.05
HEAVY_SECONDS = 1.0

# Disk was up to 3.5x slower than memory on a researcher query (3: 252 against 72 ms), memory 3x slower on
# another (2: 21 against 60 ms): a request is tried on the other kind only if that cannot cost it its answer.
EXPLORE_HEADROOM = 4


def preferred_kind(kinds: Sequence[str], costs: dict[str, float], timeout: float) -> str:
    """The kind of worker to send a request to first, given its fastest run so far on each kind: the disk
    store until it has run (a first run in memory that passes the limit would cost the copy: seconds of a
    core and ~5 KB per measure to load again); then one it has not run on yet while its runs so far leave
    room within ``timeout``; else the one it ran fastest on."""
    if not costs:
        return DISK if DISK in kinds else kinds[0]
    best = min(costs.values())
    if best * EXPLORE_HEADROOM < timeout:
        for kind in kinds:
            if kind not in costs:
                return kind
    return min(costs, key=costs.__getitem__)


def allowed_kinds(kinds: Sequence[str], costs: dict[str, float], timeout: float) -> tuple[str, ...] | None:
    """The kinds of worker a request may take when the one it prefers is busy (None: any): any once it is
    known to fit the limit with room to spare, else the disk store only. A query stopped in memory costs the
    copy (seconds of a core and ~5 KB per measure to load again), and the same query would only have cost a
    disk worker, which restarts at once: so a copy is lost only to a query that ran within a quarter of the
    limit before, and a stream of new or pathological queries cannot make the copies reload again and again."""
    if DISK not in kinds or (costs and min(costs.values()) * EXPLORE_HEADROOM < timeout):
        return None
    return (DISK,)


def lane(runs: dict[str, float], stopped: float = 0.0) -> str:
    """Where a request waits for a worker (pool.LANES): by its fastest run, else heavy once a run of it was
    stopped after HEAVY_SECONDS, else new."""
    if not runs:
        return pool.HEAVY if stopped >= HEAVY_SECONDS else pool.NEW
    best = min(runs.values())
    return pool.CHEAP if best <= CHEAP_SECONDS else pool.HEAVY if best >= HEAVY_SECONDS else pool.NORMAL

"""Faults, with the real command line: a build killed at any moment, a build on a full disk. Whatever happens,
what is published stays exactly as it was, and the next build succeeds."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox
import pytest

from lodpub import metadata
from lodpub.settings import Settings
from lodpub.store import ensure_caches

from conftest import BASE, ROOT, SEED, files_of, lodpub, row, table

# ================================================================== builds

PHASES = ("read", "map", "validate", "write", "changes", "index", "publish")  # the stage each line ends, then
# "publish": after the last line, the edition is renamed into the tree and pointed to, older ones pruned
KILLS_PER_PHASE = 3
KILLS_ANYWHERE = 1
MEASURES = 120
RANDOM = 20_250_601  # a fixed seed: a failing kill happens again at the same moment of the same stage
DEPARTMENTS = [f"{bureau}局 {bureau}部 {section}課" for bureau in ("総務", "財務", "福祉", "環境", "産業")
               for section in ("企画", "調整", "推進")]


def rows(count: int, revised: int = 0) -> list[str]:
    """``count`` measures over fifteen units; every 7th summary rewritten in revision ``revised``."""
    return [row(name=f"施策{n:03d}", summary=f"施策{n:03d}の概要。" + ("（改訂）" * revised if n % 7 == 0 else ""),
                department=DEPARTMENTS[n % len(DEPARTMENTS)], phone=f"03-5320-{1000 + n % 50:04d}",
                url=f"https://example.jp/{n}") for n in range(count)]


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LODPUB_") and k != "SOURCE_DATE_EPOCH"}


def start_build(table_path: Path, dist: Path) -> subprocess.Popen:
    """``lodpub build`` in a session of its own, so that any process it started can be found after it."""
    return subprocess.Popen([sys.executable, "-m", "lodpub", "build", str(table_path), "--out", str(dist)],
                            cwd=ROOT, env=environ(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def lines_until(process: subprocess.Popen, phase: str, said: list[str]) -> bool:
    """Read the build's progress until the line that ends the stage before ``phase``; False if it ended first."""
    before = PHASES[PHASES.index(phase) - 1] if phase != PHASES[0] else None
    while before is not None and not (said and said[-1].startswith(before + ":")):
        line = process.stderr.readline()
        if not line:
            return False
        said.append(line)
    return True


def phase_hit(said: list[str]) -> str:
    """The stage a kill fell in: the one after the last stage the build said it had finished."""
    done = [line.split(":")[0] for line in said if line.split(":")[0] in PHASES]
    return PHASES[PHASES.index(done[-1]) + 1] if done else PHASES[0]


@dataclass
class Kill:
    phase: str  # where it was aimed
    delay: float  # seconds after the line that starts that phase (after the start for "read")
    hit: str = ""  # where it fell
    outcome: str = ""  # as it was / first edition only / placed, not pointed / published


def measure(table_path: Path, dist: Path) -> dict[str, float]:
    """Run the build once uninterrupted: how long each phase takes, from its lines' arrival."""
    start = time.monotonic()
    process = start_build(table_path, dist)
    ends = {}
    for line in process.stderr:
        ends[line.split(":")[0]] = time.monotonic() - start
    assert process.wait() == 0
    ends["publish"] = time.monotonic() - start
    assert list(ends) == list(PHASES), ends
    return {phase: ends[phase] - (ends[PHASES[i - 1]] if i else 0.0) for i, phase in enumerate(PHASES)}


def plan(durations: dict[str, float]) -> list[Kill]:
    """Kills spread over every stage (a few at random moments of the whole build too), by a fixed seed."""
    spread = random.Random(RANDOM)
    kills = [Kill(phase, spread.uniform(*(0.0, 0.02) if phase == "publish" else (0.1, 0.9)) * durations[phase])
             for phase in PHASES for _ in range(KILLS_PER_PHASE)]  # publishing: its first milliseconds matter
    kills += [Kill("read", spread.uniform(0.0, sum(durations.values()))) for _ in range(KILLS_ANYWHERE)]
    spread.shuffle(kills)
    return kills


def kill_at(kill: Kill, table_path: Path, dist: Path) -> list[str]:
    """Start a build, SIGKILL it at ``kill``'s moment; return what it said; fail if it left a process behind."""
    process = start_build(table_path, dist)
    said: list[str] = []
    if lines_until(process, kill.phase, said):
        time.sleep(kill.delay)
        os.kill(process.pid, signal.SIGKILL)
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped: its group id stays its own
    left = members_of_group(process.pid)
    for pid in left:  # processes the build started and that outlived it: ours to stop, and a failure
        os.kill(pid, signal.SIGKILL)
    said += process.stderr.read().splitlines(keepends=True)
    process.stderr.close()
    code = process.wait()
    assert not left, f"a build killed in {phase_hit(said)} left processes behind: {left}"
    assert code in (-signal.SIGKILL, 0), (code, said)
    kill.hit = phase_hit(said) if code else "finished"
    assert "Traceback" not in "".join(said)
    return said


def members_of_group(group: int) -> list[int]:
    """The live processes of the process group ``group`` but its leader."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if int(fields[2]) == group and pid != group and fields[0] != "Z":
            found.append(pid)
    return found


def copy_tree(source: Path, target: Path) -> None:
    for name in ("dist", "dist.cache"):
        shutil.rmtree(target / name, ignore_errors=True)
        shutil.copytree(source / name, target / name, symlinks=True)


def check_cache_is_whole_or_rebuilt(cache: Path, edition: Path, triples: int, measures: int, scratch: Path,
                                    checked: list) -> None:
    """What a killed build left of a new edition's caches is either whole or rebuilt by the next reader (a
    server opening the edition): never taken as it is when half-written. ``checked``: what was checked last."""
    found = files_of(cache) if cache.exists() else None
    if found is None or (checked and found == checked[0]):
        return
    checked[:] = [found]
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(cache, scratch)
    store = ensure_caches(edition, scratch, BASE, edition.name)  # what ``lodpub serve`` does on opening it
    assert len(store) == triples
    del store
    with sqlite3.connect(scratch / "search.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM measure").fetchone()[0] == measures
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    shutil.rmtree(scratch)


def test_a_build_killed_at_any_moment_leaves_what_is_published_as_it_was(tmp_path):
    """Builds of a changed table SIGKILLed in each of their stages (by a fixed seed): after each, the tree is
    byte for byte and link for link as it was (or, killed once the pointer moved, what the build would have
    published), the current edition's caches are untouched and the new one's are whole or rebuilt when read;
    then a build that is not killed publishes exactly what an uninterrupted one gives."""
    tables = tmp_path / "tables"
    tables.mkdir()
    first, changed = tables / "first.txt", tables / "measures.txt"
    first.write_text(table(*rows(MEASURES)), encoding="utf-8")  # a build of ~1.5 s: 0.1-0.5 s a stage
    changed.write_text(table(*rows(MEASURES - 10, revised=1), *(row(name=f"追加{n}") for n in range(10))),
                       encoding="utf-8")
    pristine, reference, work = (tmp_path / name for name in ("pristine", "reference", "work"))
    assert lodpub("build", "-q", str(first), "--out", str(pristine / "dist")).returncode == 0
    old = os.readlink(pristine / "dist" / "current")
    before, old_cache = files_of(pristine / "dist"), files_of(pristine / "dist.cache" / old)

    reference.mkdir()
    copy_tree(pristine, reference)
    durations = measure(changed, reference / "dist")
    after = files_of(reference / "dist")  # builds are reproducible: what the interrupted one must give, or nothing
    new = os.readlink(reference / "dist" / "current")
    placed = before | {key: value for key, value in after.items() if key.startswith(new + "/") or key == new}
    # The query store holds the dump and the description, each triple once, as the description counts them.
    triples = metadata.endpoint_triples(metadata.read_description(reference / "dist" / new), Settings())

    work.mkdir()
    copy_tree(pristine, work)
    dist, caches = work / "dist", work / "dist.cache"
    kills = plan(durations)
    left_staging, checked = 0, []
    for kill in kills:
        if kill.phase == "index":  # caches a kill left whole make the stage instant: aim at its real work
            shutil.rmtree(caches / new, ignore_errors=True)
        was = files_of(dist)  # the first edition, or that and the new one renamed in by a kill, not pointed to
        said = kill_at(kill, changed, dist)
        now = files_of(dist)
        if now == was:
            kill.outcome = "as it was"
        elif now == before and kill.hit == "publish":  # replacing one a kill had renamed in: taken out first
            kill.outcome = "first edition only"
        elif now == placed and kill.hit == "publish":  # renamed in whole, not yet pointed to: the next build's
            kill.outcome = "placed, not pointed"
        elif now == after and kill.hit in ("publish", "finished"):
            kill.outcome = "published"
        else:
            differ = {name: sorted(k for k in now.keys() | state.keys() if now.get(k) != state.get(k))[:5]
                      for name, state in (("as it was", was), ("placed", placed), ("published", after))}
            pytest.fail(f"a build killed in {kill.hit} changed the tree: {differ}; it said {said}")
        assert files_of(caches / old) == old_cache, f"killed in {kill.hit}: the current edition's caches changed"
        check_cache_is_whole_or_rebuilt(caches / new, reference / "dist" / new, triples, MEASURES,
                                        work / "scratch", checked)
        left_staging += any(work.glob(".dist-new-*"))
        if kill.outcome == "published":
            copy_tree(pristine, work)  # back to the first edition, whatever the kill left beside the tree
    summary = "\n".join(f"{k.phase:>8} +{k.delay:.3f} s → {k.hit:>8}: {k.outcome}" for k in kills)
    print(f"\nstage durations {({p: round(d, 3) for p, d in durations.items()})}\n{summary}")
    assert len(kills) >= 20
    assert {k.hit for k in kills} >= set(PHASES) - {"map", "write"}, summary  # the short stages: hit mostly
    assert sum(k.outcome in ("as it was", "first edition only") for k in kills) >= 15, summary
    assert left_staging, "no kill left a staging directory: the next build's clearing of one was never exercised"

    result = lodpub("build", str(changed), "--out", str(dist))  # not killed: publishes the new edition
    assert result.returncode == 0, result.stderr
    assert files_of(dist) == after
    assert_served_tree_is_whole(dist, new)
    assert not [p.name for p in work.iterdir() if p.name.startswith((".dist-new-", ".dist-gone-"))]
    assert not [str(p) for p in caches.rglob(".*") if p.name.startswith((".store-new-", ".search-new-", ".gone-"))]
    store = ox.Store.read_only(str(caches / new / "store"))
    assert len(store) == triples


def assert_served_tree_is_whole(dist: Path, edition: str) -> None:
    """``current`` resolves to ``edition``; every file at the top resolves to that edition's file."""
    assert os.readlink(dist / "current") == edition and (dist / "current").resolve() == (dist / edition).resolve()
    files = sorted(p.name for p in (dist / edition).iterdir())
    assert "measures.nt" in files and "void.ttl" in files
    for name in files:
        assert (dist / name).is_symlink() and (dist / name).resolve() == (dist / edition / name).resolve()
        assert (dist / name).read_bytes() == (dist / edition / name).read_bytes()


def test_what_any_killed_build_can_leave_is_cleared_by_the_next(tmp_path):
    """Every leftover a kill can leave, at once: a staging directory, an edition on its way out, a link being
    made in the tree, an edition renamed in but not pointed to, half-written caches of it."""
    dist = tmp_path / "dist"
    source = tmp_path / "table.txt"
    source.write_text(table(*rows(20)), encoding="utf-8")
    assert lodpub("build", "-q", str(source), "--out", str(dist)).returncode == 0
    old = os.readlink(dist / "current")
    source.write_text(table(*rows(20, revised=1)), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "dist", elsewhere / "dist", symlinks=True)
    assert lodpub("build", "-q", str(source), "--out", str(elsewhere / "dist")).returncode == 0
    new = os.readlink(elsewhere / "dist" / "current")
    after = files_of(elsewhere / "dist")

    (tmp_path / ".dist-new-killed").mkdir()
    (tmp_path / ".dist-new-killed" / "measures.nt").write_text("half")
    (tmp_path / ".dist-gone-0123456789ab").mkdir()
    os.symlink("0123456789ab", tmp_path / f".dist-new-link-{os.getpid()}-current")
    shutil.copytree(elsewhere / "dist" / new, dist / new)  # placed, not pointed to
    cache = tmp_path / "dist.cache" / new
    (cache / ".store-new-killed").mkdir(parents=True)
    (cache / ".store-new-killed" / "000001.sst").write_bytes(b"half")
    (cache / ".search-new-killed").write_bytes(b"half")
    (cache / "store").mkdir()  # a store without its COMPLETE marker: never taken as whole
    (tmp_path / "dist.cache" / ".gone-0123456789ab").mkdir()

    assert lodpub("build", "-q", str(source), "--out", str(dist)).returncode == 0
    assert files_of(dist) == after
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".dist.lock"]
    assert sorted(p.name for p in cache.iterdir()) == ["search.sqlite", "store"]
    assert sorted(p.name for p in (tmp_path / "dist.cache").iterdir()) == sorted([old, new])
    assert len(ox.Store.read_only(str(cache / "store"))) > 0


READER = """
import json, os, sys
dist, stop = sys.argv[1], sys.argv[2]
seen, missing, n = set(), [], 0
while n % 1000 or not os.path.exists(stop):
    n += 1
    try:
        seen.add(os.readlink(dist + "/current"))
        if not os.path.exists(dist + "/measures.nt") or not os.path.exists(dist + "/current/void.ttl"):
            missing.append("a file at the top did not resolve")
    except OSError as exc:
        missing.append(f"{exc.filename}: {exc.strerror}")
print(json.dumps({"seen": sorted(seen), "missing": missing[:3], "reads": n}))
"""


def test_a_reader_never_finds_the_tree_without_its_pointer_while_builds_publish(tmp_path):
    """The pointer is replaced in one rename: read as fast as another process can, it always names an
    edition that is whole, and the files at the top always resolve."""
    dist = tmp_path / "dist"
    source = tmp_path / "table.txt"
    source.write_text(table(*rows(20)), encoding="utf-8")
    assert lodpub("build", "-q", str(source), "--out", str(dist)).returncode == 0
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(dist), str(stop)], stdout=subprocess.PIPE,
                              text=True)
    try:
        for revision in range(1, 3):
            source.write_text(table(*rows(20, revised=revision)), encoding="utf-8")
            assert lodpub("build", "-q", str(source), "--out", str(dist)).returncode == 0
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=30)
    found = json.loads(out)
    assert found["missing"] == []
    assert len(found["seen"]) == 3 and found["reads"] > 10_000


# ------------------------------------------------------------------ a full disk

@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 4 MiB, mounted for the test (root, and a machine that allows it; else the test is skipped)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                                 capture_output=True, text=True)
        refused = (mounted.stderr or mounted.stdout).strip() if mounted.returncode else ""
    except OSError as exc:  # no mount command at all
        refused = str(exc)
    if refused:
        print(f"cannot mount a tmpfs here: {refused}")
        pytest.skip(f"cannot mount a tmpfs here: {refused}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` with a file of zeros, leaving ``leave`` bytes free."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    with filler.open("wb") as fh:
        fh.write(bytes(max(free_bytes(disk) - leave, 0)))


FULL = re.compile(r"lodpub: cannot write (/\S+): No space left on device \(the disk is full\); nothing was published")


def listing(directory: Path) -> list[str]:
    """Every path under ``directory``, empty directories and hidden names included."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def replace_contents(directory: Path, source: Path) -> None:
    """Make ``directory`` (a mount point, which stays) hold exactly what ``source`` holds."""
    for path in directory.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    for path in source.iterdir():
        if path.is_dir():
            shutil.copytree(path, directory / path.name, symlinks=True)
        else:
            shutil.copy2(path, directory / path.name)


def test_a_build_on_a_full_disk_says_so_and_publishes_nothing(small_disk, tmp_path):
    """The same build with more room each time (by halves, from none to what it needs, so that it runs out
    in each of its stages): each that does not fit says which file it could not write and leaves the disk
    exactly as it found it, the space included."""
    dist = small_disk / "dist"
    source = tmp_path / "seed.txt"
    source.write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    assert lodpub("build", "-q", str(source), "--out", str(dist)).returncode == 0
    source.write_text(SEED.read_text(encoding="utf-8") + row(name="満杯の施策") + "\n", encoding="utf-8")
    first = os.readlink(dist / "current")
    pristine = tmp_path / "pristine"
    shutil.copytree(small_disk, pristine, symlinks=True)
    before, listed = files_of(small_disk), listing(small_disk)
    named: dict[int, str] = {}

    def fits(leave: int) -> bool:
        replace_contents(small_disk, pristine)
        free = free_bytes(small_disk)
        fill(small_disk, leave)
        result = lodpub("build", "-q", str(source), "--out", str(dist))
        (small_disk / "filler").unlink()
        if result.returncode == 0:
            assert os.readlink(dist / "current") != first
            assert_served_tree_is_whole(dist, os.readlink(dist / "current"))
            return True
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        said = FULL.fullmatch(result.stderr.strip().splitlines()[-1])
        assert said and said[1].startswith(f"{small_disk}/"), result.stderr
        named[leave] = said[1][len(str(small_disk)) + 1:]
        assert files_of(small_disk) == before, f"with {leave} bytes free: the tree or its caches changed"
        assert listing(small_disk) == listed, f"with {leave} bytes free: the failed build left something behind"
        assert free_bytes(small_disk) == free, f"with {leave} bytes free: the failed build left space taken"
        return False

    low, high = 0, 1 << 20
    assert not fits(low) and fits(high)
    while high - low > 8 << 10:
        middle = (low + high) // 2 // 4096 * 4096
        low, high = (low, middle) if fits(middle) else (middle, high)
    print(f"\nit fits in {high >> 10} KiB; the paths named: " +
          ", ".join(f"{leave >> 10} KiB: {path}" for leave, path in sorted(named.items())))
    assert any(p.startswith(".dist-new-") for p in named.values()), named  # the new edition's, staged
    assert any(p.endswith("/store") for p in named.values()), named  # its query store
    # The search index is written after the query store, into space RocksDB frees when the store (loaded ahead,
    # then given the description) closes: no amount of free space makes the index the write that fails any more.


# ================================================================== serving
# (the server's faults: to come)

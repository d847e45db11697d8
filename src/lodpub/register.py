"""The identifier register: every IRI ever minted, so that none ever changes or breaks.

A committed TSV file (``data/register.tsv``). Each resource is matched to its
entry by a key — a measure by its name (then department and summary, to tell
apart measures of the same name), a unit by its full path, a contact point by
unit path and telephone, a strategy by its number. Renaming is done here: edit
an entry's key and the next build gives the renamed resource its old IRI.
Entries are never deleted: a resource that disappears is marked ``withdrawn``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .problems import InputError, Problem

KINDS = ("strategy", "unit", "contact", "measure")
COLUMNS = ("kind", "id", "status", "key", "department", "digest")
ACTIVE, WITHDRAWN = "active", "withdrawn"
PREAMBLE = (
    "# lodpub identifier register: one line per IRI ever minted (see README, 'Identifiers').\n"
    "# To rename a measure or unit, edit its key. Never delete or reuse a line.\n"
)


@dataclass
class Entry:
    kind: str
    id: int
    status: str
    key: str
    department: str = ""
    digest: str = ""


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


class Register:
    def __init__(self, entries: Iterable[Entry] = (), path: Path | None = None):
        self.path = path
        self.entries: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        for entry in entries:
            self.entries[entry.kind].append(entry)
        self._seen: dict[str, set[int]] = {kind: set() for kind in KINDS}
        self._next = {kind: max((e.id for e in self.entries[kind]), default=0) + 1 for kind in KINDS}

    @classmethod
    def load(cls, path: Path) -> Register:
        """Read a register file; a missing file is an empty register."""
        if not path.exists():
            return cls(path=path)
        problems: list[Problem] = []
        entries: list[Entry] = []
        ids: dict[tuple[str, int], int] = {}
        lines = path.read_text(encoding="utf-8").splitlines()
        header_seen = False
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.split("\t")
            if not header_seen:
                header_seen = True
                if tuple(cells) != COLUMNS:
                    problems.append(Problem(str(path), number, 0, "", f"expected the header {'/'.join(COLUMNS)}"))
                continue
            cells += [""] * (len(COLUMNS) - len(cells))
            kind, ident, status, key = cells[:4]
            where = (str(path), number)
            if kind not in KINDS:
                problems.append(Problem(*where, 1, "kind", f"unknown kind {kind!r}; one of {', '.join(KINDS)}"))
                continue
            if not ident.isdigit():
                problems.append(Problem(*where, 2, "id", f"{ident!r} is not a number"))
                continue
            if status not in (ACTIVE, WITHDRAWN):
                problems.append(Problem(*where, 3, "status", f"{status!r} is neither {ACTIVE} nor {WITHDRAWN}"))
                continue
            if (kind, int(ident)) in ids:
                problems.append(Problem(*where, 2, "id", f"{kind} {ident} is already registered "
                                                         f"at line {ids[kind, int(ident)]}"))
                continue
            ids[kind, int(ident)] = number
            entries.append(Entry(kind, int(ident), status, key, cells[4], cells[5]))
        if problems:
            raise InputError(problems)
        return cls(entries, path)

    def check_covers(self, published: Register, name: str) -> None:
        """Refuse to build with a register that lacks an IRI a published edition has minted: the next
        measure would be given that IRI, which portals already link to something else."""
        ours = {(e.kind, e.id) for entries in self.entries.values() for e in entries}
        missing = [e for entries in published.entries.values() for e in entries if (e.kind, e.id) not in ours]
        if missing:
            where = str(published.path) if published.path else "the current edition's register"
            named = ", ".join(f"{e.kind} {e.id} ({e.key})" for e in missing[:3])
            more = f" and {len(missing) - 3:,} more" if len(missing) > 3 else ""
            raise InputError([Problem(name, 0, 0, "id", f"{len(missing):,} IRIs already published are not in this "
                                      f"register: {named}{more}; copy their lines back from {where}, or "
                                      "build with that register")])

    def assign(self, kind: str, keys: Sequence[str]) -> dict[str, int]:
        """IDs for distinct keys, minting new ones (in the order given) where needed."""
        known = {e.key: e for e in self.entries[kind]}
        result: dict[str, int] = {}
        for key in keys:
            if key in result:
                continue
            entry = known.get(key) or self._mint(kind, key)
            self._use(entry)
            result[key] = entry.id
        return result

    def assign_measures(self, measures: Sequence[tuple[str, str, str]]) -> list[int]:
        """IDs for measures given as ``(name, department, summary)``, in order.

        Matched in passes from the most to the least specific key, so that
        measures sharing a name keep their own IRIs when rows move.
        """
        wanted = [(name, dept, digest(summary)) for name, dept, summary in measures]
        ids: list[int | None] = [None] * len(wanted)
        free = [e for e in self.entries["measure"]]
        for width in (3, 2, 1):
            pool: dict[tuple[str, ...], list[Entry]] = defaultdict(list)
            for entry in free:
                pool[(entry.key, entry.department, entry.digest)[:width]].append(entry)
            for i, key in enumerate(wanted):
                if ids[i] is None and pool.get(key[:width]):
                    entry = pool[key[:width]].pop(0)
                    ids[i] = entry.id
                    entry.department, entry.digest = key[1], key[2]
                    self._use(entry)
            taken = {i for i in ids if i is not None}
            free = [e for e in free if e.id not in taken]
        for i, (name, dept, dig) in enumerate(wanted):
            if ids[i] is None:
                entry = self._mint("measure", name, dept, dig)
                self._use(entry)
                ids[i] = entry.id
        return [i for i in ids if i is not None]

    def _mint(self, kind: str, key: str, department: str = "", dig: str = "") -> Entry:
        entry = Entry(kind, self._next[kind], ACTIVE, key, department, dig)
        self._next[kind] += 1
        self.entries[kind].append(entry)
        return entry

    def _use(self, entry: Entry) -> None:
        entry.status = ACTIVE
        self._seen[entry.kind].add(entry.id)

    def finish(self) -> None:
        """Mark every entry not used by this build as withdrawn."""
        for kind, entries in self.entries.items():
            for entry in entries:
                if entry.id not in self._seen[kind]:
                    entry.status = WITHDRAWN

    def withdrawn(self, kind: str) -> list[int]:
        return [e.id for e in self.entries[kind] if e.status == WITHDRAWN]

    def dumps(self) -> str:
        lines = [PREAMBLE + "\t".join(COLUMNS)]
        for kind in KINDS:
            for e in sorted(self.entries[kind], key=lambda e: e.id):
                lines.append("\t".join((kind, str(e.id), e.status, e.key, e.department, e.digest)))
        return "\n".join(lines) + "\n"

    def save(self, path: Path | None = None) -> None:
        """Write atomically: the old register stays whole until the new one is complete."""
        target = path or self.path
        if target is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".register-")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(self.dumps())
        os.replace(tmp, target)

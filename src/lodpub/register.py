"""The identifier register: every IRI ever minted, so that none ever changes or breaks.

A committed TSV file (``data/register.tsv``), one line per IRI: its kind, number, status and key — a measure's
name (with its department and a digest of its summary), a unit's full path, a contact point's unit path and
telephone, a strategy's number — then the numbers of its successors, if it was withdrawn in favour of others,
and its former keys, oldest first. Which entry a resource of a new build takes is decided in ``matching.py``;
renaming by hand is done here: edit an entry's key (or use ``lodpub register join``). Entries are never
deleted: a resource that disappears is marked ``withdrawn``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lodpub import iris
from lodpub.problems import InputError, Problem

KINDS = iris.REGISTERED
# The last column holds the first former key; each further cell of a line, another.
COLUMNS = ("kind", "id", "status", "key", "department", "digest", "replaced_by", "former")
OLD_COLUMNS = COLUMNS[:6]  # a register written before successors and former keys: read as it is
ACTIVE, WITHDRAWN = "active", "withdrawn"
PREAMBLE = (
    "# lodpub identifier register: one line per IRI ever minted (see README, 'Identifiers').\n"
    "# To rename a measure or unit, edit its key (or: lodpub register join). Never delete or reuse a line.\n"
)


class RegisterError(ValueError):
    """A change asked of the register that it cannot make."""


@dataclass
class Entry:
    kind: str
    id: int
    status: str
    key: str
    department: str = ""
    digest: str = ""
    replaced_by: tuple[int, ...] = ()  # the entries that took over from this one, when it was withdrawn
    former: tuple[str, ...] = ()  # the keys it had before, oldest first

    def rekey(self, key: str) -> None:
        """Give the entry a new key, keeping the old one among its former keys."""
        if key != self.key:
            self.former = (*(k for k in self.former if k != key), self.key)
            self.key = key


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


class Register:
    def __init__(self, entries: Iterable[Entry] = (), path: Path | None = None):
        self.path = path
        self.entries: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        for entry in entries:
            self.entries[entry.kind].append(entry)
        self._seen: dict[str, set[int]] = {kind: set() for kind in KINDS}
        self._by_id = {kind: {e.id: e for e in self.entries[kind]} for kind in KINDS}
        self._next = {kind: max((e.id for e in self.entries[kind]), default=0) + 1 for kind in KINDS}

    @classmethod
    def load(cls, path: Path) -> Register:
        """Read a register file; a missing file is an empty register."""
        if not path.exists():
            return cls(path=path)
        problems: list[Problem] = []
        entries: list[Entry] = []
        ids: dict[tuple[str, int], int] = {}
        # LF or CRLF only: splitlines() would also break a key at a U+2028 (or U+0085, …) its name holds
        lines = re.split(r"\r?\n", path.read_text(encoding="utf-8"))
        header_seen = False
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.split("\t")
            if not header_seen:
                header_seen = True
                if tuple(cells) not in (COLUMNS, OLD_COLUMNS):
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
            successors = [c.strip() for c in cells[6].split(",") if c.strip()]
            if not all(c.isdigit() for c in successors):
                problems.append(Problem(*where, 7, "replaced_by", f"{cells[6]!r} is not a list of {kind} numbers "
                                                                  "separated by commas"))
                continue
            ids[kind, int(ident)] = number
            entries.append(Entry(kind, int(ident), status, key, cells[4], cells[5], tuple(map(int, successors)),
                                 tuple(c for c in cells[7:] if c)))
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

    def mint(self, kind: str, key: str, department: str = "", dig: str = "") -> Entry:
        entry = Entry(kind, self._next[kind], ACTIVE, key, department, dig)
        self._by_id[kind][entry.id] = entry
        self._next[kind] += 1
        self.entries[kind].append(entry)
        return entry

    def use(self, entry: Entry) -> None:
        """This build publishes the entry's resource (one that comes back is no longer replaced)."""
        entry.status = ACTIVE
        entry.replaced_by = ()
        self._seen[entry.kind].add(entry.id)

    def used(self, kind: str) -> set[int]:
        """The entries of ``kind`` this build publishes so far."""
        return self._seen[kind]

    def get(self, kind: str, ident: int) -> Entry | None:
        return self._by_id[kind].get(ident)

    def join(self, kind: str, keep: int, other: int) -> Entry:
        """Say that ``other`` is ``keep``: ``keep`` takes over ``other``'s key (its own among its former
        keys), and ``other`` is withdrawn in its favour (its IRI answers 410 with a link to ``keep``)."""
        kept, gone = self._pair(kind, keep, other)
        kept.rekey(gone.key)
        kept.department, kept.digest, kept.replaced_by = gone.department, gone.digest, ()
        gone.status, gone.replaced_by = WITHDRAWN, (keep,)
        return kept

    def replace(self, kind: str, old: int, successors: Iterable[int]) -> Entry:
        """Record the entries that took over from the withdrawn ``old``."""
        new = tuple(sorted(set(successors)))
        entry = self._pair(kind, old, *new)[0]
        if entry.status != WITHDRAWN:
            raise RegisterError(f"{kind} {old} is still published; only a withdrawn one can be replaced")
        entry.replaced_by = new
        return entry

    def _pair(self, kind: str, *idents: int) -> list[Entry]:
        if kind not in KINDS:
            raise RegisterError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        if len(set(idents)) != len(idents):
            raise RegisterError(f"{kind} {idents[0]} cannot be joined to or replaced by itself")
        found = []
        for ident in idents:
            entry = self.get(kind, ident)
            if entry is None:
                raise RegisterError(f"there is no {kind} {ident} in {self.path or 'the register'}")
            found.append(entry)
        return found

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
                cells = [kind, str(e.id), e.status, e.key, e.department, e.digest,
                         ",".join(map(str, e.replaced_by)), *e.former]
                while cells[-1] == "":
                    cells.pop()
                lines.append("\t".join(cells))
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

"""Which IRI each resource of a build keeps: the rows of the tables matched to the register's entries.

Reordering or inserting rows changes no IRI, and neither do the edits a table goes through between editions.
A measure is matched in passes from the surest key to the loosest: exactly (name, department and summary,
rows of identical measures in their order); its summary rewritten (name, department); moved to another
section (name, summary); renamed (department, summary); moved and rewritten (name). In the loose passes only
an entry published in the previous build is a candidate, and only where exactly one entry and exactly one
row fit: otherwise the row gets a new IRI and a warning that names file and line and says how to join them
by hand, and an entry that the row could have been is withdrawn with the new rows as its successors (a
measure split in two). A unit keeps its IRI when its name changed but its parent and its measures did not;
a contact point follows its unit. A measure or unit that keeps its IRI under a new name keeps the old one
among its former names.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from lodpub.pipeline.cells import Measure
from lodpub.pipeline.source import Row
from lodpub.problems import Problem, Severity
from lodpub.register import ACTIVE, Entry, Register, digest

# The loose passes, surest first: the fields that must agree, and what the difference is, for a warning.
PASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("name", "department"), "the same name and department"),
    (("name", "digest"), "the same name and summary"),
    (("department", "digest"), "the same department and summary"),
    (("name",), "the same name"),
)


@dataclass(frozen=True)
class Wanted:
    """A measure as the register sees it."""

    name: str
    department: str
    digest: str
    row: Row

    def key(self, fields: Sequence[str]) -> tuple[str, ...]:
        return tuple(getattr(self, f) for f in fields)


def _entry_key(entry: Entry, fields: Sequence[str]) -> tuple[str, ...]:
    values = {"name": entry.key, "department": entry.department, "digest": entry.digest}
    return tuple(values[f] for f in fields)


@dataclass
class Assigned:
    """Register numbers by kind (by key for strategies, units and contacts; in row order for measures), and
    what the build should say about them."""

    strategy: dict[str, int]
    unit: dict[str, int]
    contact: dict[str, int]
    measure: list[int]
    warnings: list[Problem] = field(default_factory=list)


def assign(register: Register, strategies: Sequence[str], units: Sequence[tuple[str, ...]],
           contacts: Sequence[tuple[str, str]], measures: Sequence[Measure]) -> Assigned:
    """Match every resource of this build to an entry of ``register``, minting the rest, and mark the
    entries no longer used withdrawn."""
    before = {e.id: e.department for e in register.entries["measure"]}  # each measure's unit path last time
    published = {kind: {e.id for e in entries if e.status == ACTIVE} for kind, entries in register.entries.items()}
    old_unit_keys = {e.id: e.key for e in register.entries["unit"]}
    warnings: list[Problem] = []
    measure_ids = _measures(register, [Wanted(m.name, " ".join(m.department), digest(m.summary), m.row)
                                       for m in measures], published["measure"], warnings)
    rows = {}
    for m in measures:
        for depth in range(1, len(m.department) + 1):
            rows.setdefault(m.department[:depth], m.row)
    now = {ident: " ".join(m.department) for ident, m in zip(measure_ids, measures, strict=True)}
    last = {ident: path for ident, path in before.items() if ident in published["measure"]}
    unit_ids = _units(register, units, rows, now, last, published["unit"], warnings)
    contact_ids = _contacts(register, contacts, unit_ids, old_unit_keys, published["contact"])
    strategy_ids = _exactly(register, "strategy", strategies)
    register.finish()
    return Assigned(strategy_ids, unit_ids, contact_ids, measure_ids, warnings)


def _exactly(register: Register, kind: str, keys: Sequence[str]) -> dict[str, int]:
    known = {e.key: e for e in register.entries[kind]}
    result: dict[str, int] = {}
    for key in keys:
        if key not in result:
            entry = known.get(key) or register.mint(kind, key)
            register.use(entry)
            result[key] = entry.id
    return result


def _measures(register: Register, wanted: list[Wanted], published: set[int], warnings: list[Problem]) -> list[int]:
    entries = register.entries["measure"]
    ids: list[int | None] = [None] * len(wanted)
    taken: set[int] = set()

    def take(i: int, entry: Entry) -> None:
        ids[i] = entry.id
        taken.add(entry.id)
        entry.rekey(wanted[i].name)
        entry.department, entry.digest = wanted[i].department, wanted[i].digest
        register.use(entry)

    exact: dict[tuple[str, ...], deque[Entry]] = defaultdict(deque)
    for entry in entries:
        if not entry.replaced_by:  # withdrawn in favour of others, it never comes back by itself
            exact[_entry_key(entry, ("name", "department", "digest"))].append(entry)
    for i, w in enumerate(wanted):
        queue = exact.get(w.key(("name", "department", "digest")))
        if queue:
            take(i, queue.popleft())

    doubts: dict[int, list[tuple[list[Entry], list[int], str]]] = defaultdict(list)  # row → what else fitted
    for fields, reason in PASSES:
        old: dict[tuple[str, ...], list[Entry]] = defaultdict(list)
        for entry in entries:
            if entry.id not in taken and entry.id in published:
                old[_entry_key(entry, fields)].append(entry)
        new: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, w in enumerate(wanted):
            if ids[i] is None:
                new[w.key(fields)].append(i)
        for key, rows in new.items():
            candidates = old.get(key, [])
            if len(rows) == 1 and len(candidates) == 1:
                take(rows[0], candidates[0])
            elif candidates:
                for i in rows:
                    doubts[i].append((candidates, rows, reason))

    minted = [i for i in range(len(wanted)) if ids[i] is None]
    for i in minted:
        w = wanted[i]
        entry = register.mint("measure", w.name, w.department, w.digest)
        register.use(entry)
        ids[i] = entry.id
    successors: dict[int, set[int]] = defaultdict(set)
    for i in minted:
        if i not in doubts:
            continue
        candidates, rows, reason = doubts[i][0]
        for c in candidates:
            if c.id not in register.used("measure"):
                successors[c.id].add(ids[i])  # type: ignore[arg-type]
        warnings.append(_doubt(wanted, ids, i, candidates, rows, reason))
    for entry in entries:
        if entry.id in successors:
            entry.replaced_by = tuple(sorted(set(entry.replaced_by) | successors[entry.id]))
    return [i for i in ids if i is not None]


def _doubt(wanted: list[Wanted], ids: list[int | None], i: int, candidates: list[Entry], rows: list[int],
           reason: str) -> Problem:
    w = wanted[i]
    others = [wanted[j].row.line for j in rows if j != i]
    fits = " and ".join(f"measure {c.id} 「{c.key}」" for c in candidates)
    also = f"; so does the row at line {', '.join(map(str, others))}" if others else ""
    first = candidates[0].id
    message = (f"「{w.name}」 has {reason} as {fits}{also}: which one it is cannot be told, so it gets a new IRI, "
               f"measure {ids[i]}, and {'those are' if len(candidates) > 1 else 'that one is'} withdrawn in favour "
               f"of the new ones. If it is measure {first}, run `lodpub register join measure {first} {ids[i]}` "
               "and build again (or give that entry this row's name in the register)")
    return Problem(w.row.table.file, w.row.line, w.row.table.columns.get("name", 0), "施策", message,
                   Severity.WARNING, w.row.table.sheet)


def _units(register: Register, units: Sequence[tuple[str, ...]], rows: dict[tuple[str, ...], Row],
           now: dict[int, str], last: dict[int, str], published: set[int], warnings: list[Problem]) -> dict[str, int]:
    """Units by full path; a renamed unit (same parent, same measures) keeps its entry."""
    entries = register.entries["unit"]
    old_key = {e.id: e.key for e in entries}
    by_key = {e.key: e for e in entries}
    result: dict[str, int] = {}
    taken: set[int] = set()
    distinct = list(dict.fromkeys(units))
    for path in distinct:
        entry = by_key.get(" ".join(path))
        if entry is not None and not entry.replaced_by:
            result[" ".join(path)] = entry.id
            taken.add(entry.id)
            register.use(entry)

    measures_now, measures_last = _under(now), _under(last)
    old_id = {key: ident for ident, key in old_key.items()}
    for path in (p for p in distinct if " ".join(p) not in result):  # a unit's parent comes before it
        key = " ".join(path)
        parent = result.get(" ".join(path[:-1])) if len(path) > 1 else None
        measures = measures_now.get(key, frozenset())
        candidates = [e for e in entries if e.id not in taken and e.id in published
                      and old_id.get(old_key[e.id].rsplit(" ", 1)[0] if " " in old_key[e.id] else "") == parent
                      and measures_last.get(old_key[e.id]) == measures]
        if len(candidates) == 1:
            entry = candidates[0]
            entry.rekey(key)
        else:
            if candidates:
                row = rows[path]
                warnings.append(Problem(row.table.file, row.line, row.table.columns.get("department", 0), "担当部署",
                                        f"the unit 「{key}」 has the parent and the measures of units "
                                        f"{', '.join(str(c.id) for c in candidates)}: it gets a new IRI; to keep one "
                                        "of theirs, give that entry this path as its key in the register",
                                        Severity.WARNING, row.table.sheet))
            entry = register.mint("unit", key)
        result[key] = entry.id
        taken.add(entry.id)
        register.use(entry)
    return result


def _under(departments: dict[int, str]) -> dict[str, frozenset[int]]:
    """Unit path → the measures in that unit or below it."""
    found: dict[str, set[int]] = defaultdict(set)
    for measure, path in departments.items():
        parts = path.split(" ")
        for depth in range(1, len(parts) + 1):
            found[" ".join(parts[:depth])].add(measure)
    return {path: frozenset(ms) for path, ms in found.items()}


def _contacts(register: Register, contacts: Sequence[tuple[str, str]], unit_ids: dict[str, int],
              old_unit_keys: dict[int, str], published: set[int]) -> dict[str, int]:
    """Contact points by unit path and telephone; one whose unit was renamed follows it."""
    entries = register.entries["contact"]
    by_key = {e.key: e for e in entries}
    old_unit = {key: ident for ident, key in old_unit_keys.items()}
    by_unit: dict[tuple[int, str], list[Entry]] = defaultdict(list)
    for e in entries:
        path, _, tel = e.key.rpartition(" ")
        if e.id in published and path in old_unit:
            by_unit[old_unit[path], tel].append(e)
    result: dict[str, int] = {}
    for path, tel in dict.fromkeys(contacts):
        key = f"{path} {tel}"
        entry = by_key.get(key)
        if entry is None or entry.id in register.used("contact"):
            fits = [e for e in by_unit.get((unit_ids[path], tel), []) if e.id not in register.used("contact")]
            if len(fits) == 1:
                entry = fits[0]
                entry.rekey(key)
            else:
                entry = register.mint("contact", key)
        register.use(entry)
        result[key] = entry.id
    return result

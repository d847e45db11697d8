"""The build pipeline: read → map → validate → write, all or nothing.

Each stage is timed (wall seconds and peak memory) so ``bench/`` can print the
figures and the command line can show progress.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from . import jsonld, metadata, publish, validation
from .cells import Measure, interpret
from .mapping import Mapper
from .problems import InputError, Problem, Severity, errors
from .register import Register
from .resources import ENGLISH_NAMES, resource_path
from .settings import Settings
from .source import EncodingError, SourceFile, Strategy, read
from .store import build_store, dump_version, ensure_search_index, open_read_only
from .vocab import RDFS, prefixes

DUMP = "measures"


class GraphInvalid(Exception):
    """The graph does not conform to the shapes; ``lines`` say why, in a steward's words."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass
class Stage:
    name: str
    seconds: float
    peak_mib: float  # this process's peak resident memory during the stage
    workers_peak_mib: float = 0.0  # the largest worker process so far


@dataclass
class BuildResult:
    out: Path
    measures: int = 0
    units: int = 0
    contacts: int = 0
    strategies: int = 0
    triples: int = 0
    warnings: list[Problem] = field(default_factory=list)
    findings: list[validation.Finding] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)

    def summary(self) -> str:
        shacl_warnings = sum(1 for f in self.findings if not f.is_violation)
        return (f"{self.measures:,} measures, {self.units:,} units, {self.contacts:,} contacts, "
                f"{self.strategies:,} strategies, {self.triples:,} triples, "
                f"{len(self.warnings) + shacl_warnings:,} warnings")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def _stage(result: BuildResult, name: str, progress: Callable[[str], None]) -> Iterator[dict[str, float]]:
    _reset_peak()
    start = time.perf_counter()
    stats: dict[str, float] = {}
    yield stats
    result.stages.append(Stage(name, time.perf_counter() - start, _peak_mib(), stats.get("workers_peak_mib", 0.0)))
    progress(f"{name}: {result.stages[-1].seconds:.1f} s")


def _return_freed_memory() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise), where that is possible."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def read_english_names(path: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                ja, _, en = line.partition("\t")
                if en.strip():
                    names[ja.strip()] = en.strip()
    return names


def read_sources(paths: Sequence[Path], encoding: str | None,
                 problems: list[Problem]) -> tuple[list[SourceFile], list[Measure]]:
    sources: list[SourceFile] = []
    measures: list[Measure] = []
    for path in paths:
        try:
            source = read(path, problems, encoding)
        except EncodingError as exc:
            problems.append(Problem(str(path), exc.line, 0, "", str(exc)))
            continue
        except OSError as exc:
            problems.append(Problem(str(path), 0, 0, "", f"cannot read the file: {exc.strerror}"))
            continue
        sources.append(source)
        for row in source.rows:
            measure = interpret(row, problems)
            if measure is not None:
                measures.append(measure)
    _check_strategies_agree(sources, problems)
    return sources, measures


def _check_strategies_agree(sources: Sequence[SourceFile], problems: list[Problem]) -> None:
    first: dict[int, Strategy] = {}
    for source in sources:
        for table in source.tables:
            s = table.strategy
            other = first.setdefault(s.number, s)
            if other.title != s.title and other.file != s.file:
                problems.append(Problem(s.file, s.line, 0, "", f"strategy {s.number} is titled "
                                        f"{other.title!r} in {other.file}; one number, one title"))


def build(paths: Sequence[Path], out: Path, settings: Settings, register: Register, *,
          encoding: str | None = None, environ: Mapping[str, str] | None = None,
          progress: Callable[[str], None] = lambda message: None,
          workers: int | None = None) -> BuildResult:
    """Build ``out`` from the tables at ``paths``; raise before touching ``out`` if anything is wrong."""
    env = dict(os.environ if environ is None else environ)
    result = BuildResult(out)
    base = settings.base
    problems: list[Problem] = []

    with _stage(result, "read", progress):
        sources, measures = read_sources(paths, encoding, problems)
        if errors(problems):
            raise InputError(problems)
        result.warnings = [p for p in problems if p.severity is Severity.WARNING]

    with _stage(result, "map", progress):
        mapper = Mapper(base, register, read_english_names(resource_path(*ENGLISH_NAMES)))
        graph = mapper.map(sources, measures)
        result.measures, result.units = graph.measures, graph.units
        result.contacts, result.strategies = graph.contacts, graph.strategies
        result.triples = len(graph)

    with _stage(result, "validate", progress) as stats:
        rules = validation.Rules.load(base)
        findings = validation.validate(graph.triples, rules, f"{base}id/measure/", workers, stats=stats)
        result.findings = findings
        describe = _describer(graph, base)
        if any(f.is_violation for f in findings):
            raise GraphInvalid(validation.describe_findings(findings, describe))

    with publish.staging(out) as tmp:
        with _stage(result, "write", progress):
            _write_dist(tmp, graph.triples, settings, rules, findings, register, sources, mapper, env)
        # The dumps are written: let the graph go before the store and index are built from them.
        graph.triples.clear()
        graph.records.clear()
        _return_freed_memory()
        with _stage(result, "index", progress):
            version = dump_version(tmp)
            build_store(tmp, version)
            store = open_read_only(tmp)
            ensure_search_index(tmp, store, settings.base, version)
            del store
    register.save()
    return result


def _write_dist(tmp: Path, triples, settings: Settings, rules: validation.Rules,
                findings, register: Register, sources, mapper: Mapper, env) -> None:
    base = settings.base
    shapes_text, ontology_text, _ = rules.texts
    names = prefixes(base) | {kind: f"{base}id/{kind}/" for kind in ("measure", "unit", "contact", "strategy")}
    publish.write_turtle(tmp / f"{DUMP}.ttl", triples, names)
    publish.write_sorted_ntriples(tmp / f"{DUMP}.nt", triples)
    context_url = f"{base}data/context.jsonld"
    with (tmp / f"{DUMP}.jsonld").open("w", encoding="utf-8", newline="\n") as fh:
        jsonld.write_document(fh, triples, base, context_url)
    (tmp / "context.jsonld").write_text(
        json.dumps(jsonld.context(base), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (tmp / "ontology.ttl").write_text(publish.with_base(ontology_text, base), encoding="utf-8")
    (tmp / "shapes.ttl").write_text(publish.with_base(shapes_text, base), encoding="utf-8")
    publish.write_turtle(tmp / "shacl-report.ttl", validation.report_triples(findings), prefixes(base))
    (tmp / "register.tsv").write_text(register.dumps(), encoding="utf-8")

    titles = {
        f"{DUMP}.ttl": "The dataset in Turtle", f"{DUMP}.nt": "The dataset in N-Triples (sorted)",
        f"{DUMP}.jsonld": "The dataset in JSON-LD", "context.jsonld": "The JSON-LD context",
        "ontology.ttl": "The lodpub ontology", "shapes.ttl": "The SHACL shapes",
        "shacl-report.ttl": "The SHACL validation report of this build",
        "register.tsv": "The identifier register (every IRI ever minted, with withdrawn ones)",
    }
    dumps = (f"{DUMP}.ttl", f"{DUMP}.nt", f"{DUMP}.jsonld")
    with ThreadPoolExecutor(len(dumps)) as compressing:  # zlib lets go of the GIL: 3.4 -> 1.8 s at 100,000
        list(compressing.map(publish.gzip_file, (tmp / name for name in dumps)))
    titles.update({name + ".gz": titles[name] + ", gzipped" for name in dumps})
    files = [metadata.FileInfo(name, (tmp / name).stat().st_size, publish.sha256_file(tmp / name), title)
             for name, title in sorted(titles.items())]
    source_info = [(mapper.source_iri(s.path), Path(s.path).name, s.size, s.sha256) for s in sources]
    description = metadata.describe(settings, triples, files, source_info, metadata.modified_date(settings, env))
    description += mapper.government_triples()  # the publisher, described where it is named
    found = validation.validate(description, rules, f"{base}id/measure/", workers=1)
    if any(f.is_violation for f in found):
        raise GraphInvalid(validation.describe_findings(found, str))
    publish.write_turtle(tmp / "void.ttl", description, prefixes(base) | {"data": f"{base}data/"})


def _describer(graph, base: str) -> Callable[[str], str]:
    """Name a resource for a person: a measure by its name and source line, others by label."""
    labels = {t.subject.value: t.object.value for t in reversed(graph.triples) if t.predicate == RDFS.label}

    def describe(iri: str) -> str:
        owner = iri.split("#", 1)[0]
        m = graph.records.get(owner)
        if m is not None:
            return f"measure {owner.rsplit('/', 1)[-1]} 「{m.name}」 ({m.row.table.file} line {m.row.line})"
        kind = owner[len(base) + 3:].split("/", 1)[0] if owner.startswith(base + "id/") else "resource"
        label = labels.get(iri)
        return f"{kind} <{iri}>" + (f" 「{label}」" if label else "")
    return describe


__all__ = ["BuildResult", "GraphInvalid", "Stage", "build"]

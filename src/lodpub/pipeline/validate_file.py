"""``lodpub validate FILE``: check any RDF file against lodpub's shapes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyoxigraph as ox

from lodpub import formats, iris
from lodpub.pipeline import jsonld, validation
from lodpub.settings import Settings


def parse_file(path: Path, base: str) -> list[ox.Triple]:
    """Parse by file extension; JSON-LD goes through pyld with our context served locally."""
    suffix = path.suffix.lower()
    if suffix == ".jsonld":
        return jsonld.to_triples(json.loads(path.read_text(encoding="utf-8")), base)
    fmt = formats.READABLE.get(suffix)
    if fmt is None:
        raise ValueError(f"unknown RDF format {suffix!r}; use one of .ttl .nt .jsonld .rdf")
    return [q.triple for q in ox.parse(path=str(path), format=fmt, base_iri=base)]


def validate_file(path: Path, settings: Settings) -> int:
    base = settings.base
    try:
        triples = parse_file(path, base)
    except FileNotFoundError:
        print(f"lodpub: {path}: no such file", file=sys.stderr)
        return 1
    except SyntaxError as exc:
        print(f"{path}: not valid RDF: {exc}", file=sys.stderr)
        return 1
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    findings = validation.validate(triples, validation.Rules.load(base), iris.space(base, "measure"))
    for line in validation.describe_findings(findings, lambda iri: f"<{iri}>"):
        print(line, file=sys.stderr)
    violations = sum(1 for f in findings if f.is_violation)
    print(f"{path}: {len(triples):,} triples, {violations} violations, {len(findings) - violations} warnings")
    return 1 if violations else 0

"""Files shipped with lodpub: the ontology, the shapes, reference names."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parents[1]

ONTOLOGY = ("ontology", "lodpub.ttl")
SHAPES = ("shapes", "lodpub.shapes.ttl")
ENGLISH_NAMES = ("data", "english-names.tsv")


def resource_path(*parts: str) -> Path:
    """A shipped file: inside the installed package (a wheel), else in the source checkout."""
    packaged = PACKAGE.joinpath(*parts)
    return packaged if packaged.exists() else ROOT.joinpath(*parts)

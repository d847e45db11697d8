"""Shared helpers: the project's files, tables written on the fly, builds in temporary directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lodpub.build import BuildResult, build
from lodpub.register import Register
from lodpub.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "data" / "000_13cf6fe6c689b30c.txt"
SHARED = Path(os.environ.get("LODPUB_SHARED", ROOT.parent / "shared"))
HEADER = "施策\t施策概要\t担当部署\t連絡先\tURL\t備考"
BASE = Settings().base


def table(*rows: str, heading: str = "【戦略1】 テスト戦略", header: str = HEADER) -> str:
    """A one-strategy table in the source layout; each row is tab-separated text."""
    return "\n".join(["", heading, "", header, *rows, ""])


def row(name="測定施策", summary="概要。", department="総務局 行政部 振興企画課",
        phone="03-5388-2443", url="https://example.jp/", remarks="") -> str:
    return "\t".join((name, summary, department, phone, url, remarks))


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def build_text(tmp_path: Path, text: str, register: Register | None = None,
               name: str = "table.txt", out: str = "dist") -> BuildResult:
    source = write(tmp_path / name, text)
    return build([source], tmp_path / out, Settings(), register or Register(), workers=1)


def lodpub(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real command line, as a user would."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LODPUB_") and k != "SOURCE_DATE_EPOCH"}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "lodpub", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=600)


def generated_table(directory: Path, measures: int, seed: int = 7, strategies: int = 8) -> Path:
    """A synthetic table from the shared generator (``../shared/bench/gen_measures.py``)."""
    script = SHARED / "bench" / "gen_measures.py"
    if not script.exists():
        pytest.fail(f"the shared table generator is missing: {script} (set LODPUB_SHARED)")
    out = directory / f"generated-{measures}-{seed}.txt"
    if not out.exists():
        subprocess.run([sys.executable, str(script), "--measures", str(measures), "--strategies",
                        str(strategies), "--seed", str(seed), "-o", str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def seed_build(tmp_path_factory) -> tuple[Path, BuildResult]:
    """The seed table built once, with a fresh register, into a temporary dist/."""
    tmp = tmp_path_factory.mktemp("seed")
    result = build([SEED], tmp / "dist", Settings(), Register(), workers=1)
    return tmp / "dist", result

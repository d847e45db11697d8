"""Serving the files of an edition: content-hash ETags, conditional GET, ranges, precompressed gzip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, RangeNotSatisfiable, Response

from lodpub import formats
from lodpub.published import sha256_file
from lodpub.serving import caching
from lodpub.serving.negotiation import accepts_gzip

if TYPE_CHECKING:
    from lodpub.serving.edition import Files

VERSIONED_CACHE = caching.IMMUTABLE
# More ranges than this in one request are ignored: the whole file, 200 (Apache's MaxRanges does the same
# at 200). Downloaders ask for one; starlette alone would build a multipart answer of up to 100 parts.
MAX_RANGES = 16
PLAIN_CACHE = caching.CURRENT


@dataclass(frozen=True)
class DistFile:
    name: str
    path: Path
    size: int
    sha256: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256[:32]}"'

    @property
    def media_type(self) -> str:
        fmt = formats.of_file(self.path.name)
        if fmt is None:
            return "application/octet-stream"
        return fmt.media_type + ("; charset=utf-8" if fmt.charset else "")


def index(edition: Path, described: dict[str, tuple[int, str]] | None = None) -> dict[str, DistFile]:
    """Every file of an edition with its SHA-256.

    ``described`` maps file names to the (size, SHA-256) the dataset description states; those are
    trusted when the size agrees, so the dumps are not read again just to be hashed.
    """
    files = {}
    for path in sorted(edition.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            size = path.stat().st_size
            known = (described or {}).get(path.name)
            sha = known[1] if known and known[0] == size else sha256_file(path)
            files[path.name] = DistFile(path.name, path, size, sha)
    return files


def _not_modified(request: Request, etag: str, last_modified: str) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return caching.matches(if_none_match, etag)
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return parsedate_to_datetime(since) >= parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
    return False


def serve(request: Request, edition: Files, name: str, versioned: bool = False, negotiated: bool = False) -> Response:
    """A file of ``edition``, gzipped from its precompressed twin when the client accepts that; at
    ``/data/<edition>/FILE`` (``versioned``) cached for good, since those bytes never change. A file given
    for a path whose answer ``Accept`` chose (``negotiated``: ``/`` in Turtle) varies by ``Accept`` too."""
    files, last_modified = edition.files, edition.last_modified
    plain = files[name]
    chosen, encoding = plain, None
    gz = files.get(name + ".gz")
    # A range is always of the identity representation: a slice of the gzipped file cannot be decoded, and a
    # client resuming a download (httpx, curl -C, wget -c) asks for gzip by default and wants the file's bytes.
    if gz is not None and "range" not in request.headers and accepts_gzip(request.headers.get("accept-encoding")):
        chosen, encoding = gz, "gzip"
    headers = {
        "ETag": chosen.etag,
        "Last-Modified": last_modified,
        "Cache-Control": VERSIONED_CACHE if versioned else PLAIN_CACHE,
        "Vary": caching.NEGOTIATED if negotiated else "Accept-Encoding",
        "Link": f'</data/{edition.edition}/{plain.name}>; rel="alternate"' if not versioned else "",
    }
    headers = {k: v for k, v in headers.items() if v}
    if encoding:
        headers["Content-Encoding"] = encoding
    if _not_modified(request, chosen.etag, last_modified):
        return Response(status_code=304, headers=headers)
    return _File(chosen.path, media_type=plain.media_type, headers=headers,
                        content_disposition_type="inline", filename=plain.name)


class _File(FileResponse):
    """A file answering ``Range`` as RFC 9110 has it: an unknown unit or more than ``MAX_RANGES`` ranges
    are ignored (200, the whole file); unsatisfiable ranges are dropped, and 416 comes only when none is
    left or the header is malformed (starlette answers 400 to that, and 416 to ``0-5,999999-``, whose
    first range it could serve); overlapping and adjacent ranges are merged, so no answer holds a byte
    twice and none is larger than the file and ``MAX_RANGES`` part headers."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        unit, _, spec = http_range.partition("=")
        parts = spec.split(",")
        if unit.strip().lower() != "bytes" or len(parts) > MAX_RANGES:
            return []  # ignored: the whole file
        ranges = []
        for part in parts:
            first, dash, last = (p.strip() for p in part.partition("-"))
            if not dash or not all(n == "" or (n.isascii() and n.isdigit() and len(n) < 20) for n in (first, last)):
                raise RangeNotSatisfiable(file_size)  # malformed (or beyond any file: 20 digits)
            if first:
                start, end = int(first), (min(int(last) + 1, file_size) if last else file_size)
                if last and int(last) < start:
                    raise RangeNotSatisfiable(file_size)
            elif last:
                start, end = max(file_size - int(last), 0), file_size  # the last N bytes; N = 0 is none
            else:
                raise RangeNotSatisfiable(file_size)
            if start < end:
                ranges.append((start, end))
        if not ranges:
            raise RangeNotSatisfiable(file_size)
        merged = [min(ranges)]
        for start, end in sorted(ranges)[1:]:
            if start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


def http_date(iso_date: str) -> str:
    return format_datetime(datetime.fromisoformat(iso_date).replace(tzinfo=UTC), usegmt=True)

"""The ``lodpub`` command: build, validate (and, next, serve).

Exit status: 0 on success, 1 for bad input or an invalid graph, 2 for a usage error.
A user's mistake is reported as ``file:line:column: message``, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lodpub import __version__, published
from lodpub.pipeline import quality, readability
from lodpub.pipeline.build import GraphInvalid, build
from lodpub.problems import InputError, Problem, errors
from lodpub.published import TreeError
from lodpub.register import KINDS, Register, RegisterError
from lodpub.settings import SettingsError, load_settings

DATA_DIR = Path("data")
TABLES = ("*.txt", "*.csv", "*.xlsx")  # the tables of data/ (its .tsv files are the register and names)
DEFAULT_REGISTER = DATA_DIR / "register.tsv"
MAX_WARNINGS_SHOWN = 50


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lodpub", description="Publish tables of measures as Linked Open Data.")
    parser.add_argument("--version", action="version", version=f"lodpub {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = commands.add_parser("build", help="convert tables to RDF, validate, and write the dumps",
                            description="Convert tables to RDF, validate them with SHACL, and write dist/. "
                                        "Nothing is written unless everything is valid.")
    b.add_argument("sources", nargs="*", type=Path, metavar="SOURCE",
                   help="table files: tab-separated text, .csv or .xlsx (default: every *.txt, *.csv and "
                        "*.xlsx in data/)")
    b.add_argument("--out", type=Path, default=Path("dist"), help="output directory (default: dist)")
    b.add_argument("--register", type=Path, default=None,
                   help="identifier register to use and update (default: data/register.tsv when building "
                        "data/, else the current edition's in the output directory, else none: IRIs are "
                        "numbered afresh in document order)")
    b.add_argument("--encoding", default=None, help="the tables' encoding, e.g. cp932 (default: detect)")
    b.add_argument("--sheet", default=None, metavar="NAME",
                   help="the sheet of a workbook to read (default: the only visible one, else the only one "
                        "holding a 【戦略N】 heading)")
    b.add_argument("--base-iri", default=None, help="base IRI of everything minted (default: from lodpub.toml)")
    b.add_argument("--workers", type=int, default=None, help="validation processes (default: one per core)")
    b.add_argument("-q", "--quiet", action="store_true", help="print only problems and the summary")

    s = commands.add_parser("serve", help="serve dist/: SPARQL endpoint, resource pages, downloads",
                            description="Serve what lodpub build wrote: the SPARQL 1.1 endpoint at /sparql, "
                                        "dereferenceable IRIs under /id/, pages and the dumps.")
    s.add_argument("--dist", type=Path, default=Path("dist"), help="the built directory (default: dist)")
    s.add_argument("--host", default=None, help="address to listen on (default: from lodpub.toml, 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (default: from lodpub.toml, 8000)")
    s.add_argument("--workers", type=int, default=None, help="query worker processes (default: one per core)")
    s.add_argument("--store", default=None, help="a SPARQL 1.1 store's query endpoint to serve the editions from "
                                                 "(default: from lodpub.toml, the embedded store)")

    t = commands.add_parser("publish", help="load an edition into a SPARQL store (Graph Store Protocol)",
                            description="Load the current edition (or --edition) into the SPARQL store whose Graph "
                                        "Store Protocol endpoint is --to, as the named graph of the edition's IRI. A "
                                        "server reading that store (lodpub serve --store) switches to it with the "
                                        "tree's pointer; then the graphs of editions the tree no longer keeps are "
                                        "dropped (never the previous edition's).")
    t.add_argument("--to", required=True, metavar="URL", help="the store's Graph Store Protocol endpoint")
    t.add_argument("--dist", type=Path, default=Path("dist"), help="the built directory (default: dist)")
    t.add_argument("--edition", default=None, help="the edition to load (default: the current one)")

    r = commands.add_parser("register", help="join or replace entries of the identifier register",
                            description="Change the identifier register by hand, for what a build cannot tell "
                                        "by itself. The next build publishes the change.")
    r.add_argument("--register", type=Path, default=DEFAULT_REGISTER,
                   help=f"the register to change (default: {DEFAULT_REGISTER})")
    changes = r.add_subparsers(dest="change", required=True, metavar="CHANGE")
    j = changes.add_parser("join", help="KEEP and OTHER are one resource: it keeps KEEP's IRI",
                           description="KEEP and OTHER are the same resource: KEEP takes OTHER's name (its own "
                                       "is kept among its former names) and OTHER is withdrawn in its favour, "
                                       "answering 410 Gone with a link to KEEP.")
    j.add_argument("kind", choices=KINDS)
    j.add_argument("keep", type=int)
    j.add_argument("other", type=int)
    p = changes.add_parser("replace", help="the withdrawn OLD was taken over by NEW",
                           description="Record that the withdrawn OLD was taken over by NEW (one or more): "
                                       "its IRI answers 410 Gone with links to them, and the data says so "
                                       "(dcterms:isReplacedBy).")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("old", type=int)
    p.add_argument("--by", type=int, nargs="+", required=True, metavar="NEW")

    c = commands.add_parser("check", help="report how tables meet the machine-readability rules",
                            description="Report how tables meet the Ministry of Internal Affairs' rules for "
                                        "machine-readable tables (統計表における機械判読可能なデータの表記方法の統一"
                                        "ルール) that apply to them, each finding with its line, column and rule, "
                                        "and any problem that would stop a build. Exit status 0 when the tables "
                                        "can be built, findings or not (they are advice: a build publishes them "
                                        "as quality.ttl); 1 when they cannot.")
    c.add_argument("sources", nargs="+", type=Path, metavar="TABLE", help="table files (.txt, .tsv, .csv, .xlsx)")
    c.add_argument("--encoding", default=None, help="the tables' encoding, e.g. cp932 (default: detect)")
    c.add_argument("--sheet", default=None, metavar="NAME", help="the sheet of a workbook to read")

    v = commands.add_parser("validate", help="validate an RDF file against lodpub's shapes")
    v.add_argument("file", type=Path, help="an RDF file (.ttl, .nt, .jsonld, .rdf)")
    v.add_argument("--base-iri", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"lodpub: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "base_iri", None):
        from dataclasses import replace
        settings = replace(settings, base_iri=args.base_iri)
    if args.command == "build":
        return _build(args, settings)
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "register":
        return _register(args)
    if args.command == "publish":
        return _publish(args, settings)
    if args.command == "check":
        return _check(args)
    return _validate(args, settings)


def _publish(args: argparse.Namespace, settings) -> int:
    from lodpub import sparql_store
    from lodpub.pipeline.to_store import StoreError, load
    try:
        done = load(args.dist, settings, args.to, args.edition)
    except (StoreError, TreeError) as exc:
        print(f"lodpub: {exc}; the store's other graphs are as they were", file=sys.stderr)
        return 1
    print(f"loaded edition {done.edition} into <{done.graph}> at {sparql_store.shown(args.to)}: "
          f"{done.triples:,} triples")
    print(f"the store keeps editions {', '.join(done.kept)}; dropped: {', '.join(done.dropped) or 'none'}")
    for problem in done.problems:  # the edition is loaded and switched to; an old graph merely stays
        print(f"lodpub: warning: {problem}; delete it by hand", file=sys.stderr)
    return 0


def _register(args: argparse.Namespace) -> int:
    if not args.register.exists():
        print(f"lodpub: {args.register} does not exist", file=sys.stderr)
        return 1
    try:
        register = Register.load(args.register)
        if args.change == "join":
            entry = register.join(args.kind, args.keep, args.other)
            done = f"{args.kind} {args.other} is now {args.kind} {args.keep} 「{entry.key}」"
        else:
            register.replace(args.kind, args.old, args.by)
            done = f"{args.kind} {args.old} is replaced by {', '.join(f'{args.kind} {n}' for n in args.by)}"
    except InputError as exc:
        return _problems(exc)
    except RegisterError as exc:
        print(f"lodpub: {exc}", file=sys.stderr)
        return 1
    register.save()
    print(f"{args.register}: {done}; build to publish it")
    return 0


def _serve(args: argparse.Namespace, settings) -> int:
    import logging
    from dataclasses import replace

    import uvicorn

    from lodpub import sparql_store
    from lodpub.serving import http_limits
    from lodpub.serving.server import create_app

    given = (("host", args.host), ("port", args.port), ("workers", args.workers), ("store", args.store))
    overrides = {k: v for k, v in given if v is not None}
    settings = replace(settings, **overrides)
    try:
        name = published.current(args.dist)
        if name is None:
            print(f"lodpub: {args.dist} has no current edition; run 'lodpub build' first", file=sys.stderr)
            return 1
        if settings.store:  # a store that will not serve (credentials, no graph) is said once, before starting
            sparql_store.check(settings, sparql_store.edition_graph(settings, name))
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        # httpx logs every request it sends a store, URL and all (a password written into it too), at INFO.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        app = create_app(args.dist, settings)
    except (TreeError, sparql_store.StoreProblem) as exc:
        print(f"lodpub: {exc}", file=sys.stderr)
        return 1
    print(f"lodpub: serving {args.dist}/ at http://{settings.host}:{settings.port}/", file=sys.stderr)
    # Every connection is a descriptor, and limit_concurrency counts connections: a soft limit below it
    # (1,024 is common) would make the process run out of descriptors before it ever answers 503.
    files = http_limits.raise_open_files()
    if files < settings.limit_concurrency + http_limits.RESERVED_FILES:
        print(f"lodpub: warning: this process may open only {files} files, fewer than limit_concurrency "
              f"({settings.limit_concurrency}) connections need; raise its hard limit (ulimit -Hn)", file=sys.stderr)
    # No X-Forwarded-For trust (any local client could forge its address in the log) and no Server
    # header: both cost time on every request, the trivial queries most. The HTTP limits (README "HTTP
    # limits"): limit_concurrency connections or requests at once (beyond, uvicorn answers 503);
    # timeout_keep_alive for an idle connection between requests; the header timeout and the header
    # bounds in http_limits' protocol (httptools: h11_max_incomplete_event_size would not apply). No
    # WebSocket: nothing here speaks it, so an upgrade request is an ordinary request.
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="warning",
                timeout_graceful_shutdown=5, proxy_headers=False, server_header=False,
                http=http_limits.protocol(settings), ws="none", limit_concurrency=settings.limit_concurrency,
                timeout_keep_alive=settings.timeout_keep_alive)
    return 0


def _build(args: argparse.Namespace, settings) -> int:
    sources = list(args.sources)
    register_path = args.register
    if not sources:
        sources = sorted(path for pattern in TABLES for path in DATA_DIR.glob(pattern))
        if not sources:
            print("lodpub: no tables given and none found in data/ (*.txt, *.csv, *.xlsx)", file=sys.stderr)
            return 2
        register_path = register_path or DEFAULT_REGISTER
    try:
        register = Register.load(register_path) if register_path else None
    except InputError as exc:
        return _problems(exc)
    except TreeError as exc:
        print(f"lodpub: {exc}", file=sys.stderr)
        return 1
    say = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr))
    try:
        result = build(sources, args.out, settings, register, encoding=args.encoding, sheet=args.sheet,
                       progress=say, workers=args.workers)
    except InputError as exc:
        return _problems(exc)
    except GraphInvalid as exc:
        print("lodpub: the graph does not conform to the shapes; nothing was published:", file=sys.stderr)
        for line in exc.lines:
            print("  " + line, file=sys.stderr)
        return 1
    except TreeError as exc:
        print(f"lodpub: {exc}; nothing was published", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a read-only one, no permission: the machine's problem, said in a line
        print(f"lodpub: {published.failure(exc, args.out)}; nothing was published", file=sys.stderr)
        return 1
    for problem in result.warnings[:MAX_WARNINGS_SHOWN]:
        print(problem, file=sys.stderr)
    if len(result.warnings) > MAX_WARNINGS_SHOWN:
        print(f"... and {len(result.warnings) - MAX_WARNINGS_SHOWN} more warnings", file=sys.stderr)
    if result.unchanged:
        print(f"{args.out}/ unchanged: edition {result.edition} already holds exactly these files "
              f"({result.summary()})")
    else:
        after = f", after {result.previous}" if result.previous else ", the first"
        print(f"built {args.out}/: edition {result.edition}{after}: {result.summary()}")
    print(readability.summary(result.readability, f"{args.out}/{quality.REPORT}"))
    return 0


def _check(args: argparse.Namespace) -> int:
    """Like a linter: every finding and problem on standard output, status 1 only if the build would fail."""
    from lodpub.pipeline.tables import read_sources
    problems: list[Problem] = []
    sources, _ = read_sources(args.sources, args.encoding, problems, args.sheet)
    findings = readability.check(sources)
    key = lambda item: (item.file, item.sheet, item.line, item.column)  # noqa: E731
    for item in sorted([*problems, *findings], key=key):
        print(item)
    failing = len(errors(problems))
    print(readability.summary(findings))
    if failing:
        print(f"lodpub: {failing} error{'s' if failing != 1 else ''}: the table cannot be built as it is")
        return 1
    return 0


def _problems(exc: InputError) -> int:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    count = sum(1 for p in exc.problems if p.severity.value == "error")
    print(f"lodpub: {count} error{'s' if count != 1 else ''}; nothing was published", file=sys.stderr)
    return 1


def _validate(args: argparse.Namespace, settings) -> int:
    from lodpub.pipeline.validate_file import validate_file
    return validate_file(args.file, settings)


if __name__ == "__main__":
    sys.exit(main())

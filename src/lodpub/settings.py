"""Project settings: one documented place (``lodpub.toml``), overridable by environment.

Every setting has a default here, may be set in ``lodpub.toml`` (looked up in the
current directory, or named by ``LODPUB_CONFIG``), and may be overridden by an
environment variable ``LODPUB_<NAME>`` (e.g. ``LODPUB_BASE_IRI``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from lodpub import iris

CONFIG_FILE = "lodpub.toml"
CHOICES = {"metrics": ("loopback", "open", "off")}  # settings that take one of a few words
URLS = ("license", "contact_url")  # settings that name a web page ("" for none), published as IRIs


@dataclass(frozen=True)
class Settings:
    # Publishing
    base_iri: str = "https://lodpub.example/"
    license: str = "https://creativecommons.org/licenses/by/4.0/"
    dataset_slug: str = "measures"
    title_ja: str = "東京都 施策一覧"
    title_en: str = "Tokyo Metropolitan Government: policy measures"
    description_ja: str = "東京都の戦略ごとの施策、担当部署と連絡先を Linked Open Data として公開します。"
    description_en: str = (
        "Policy measures of the Tokyo Metropolitan Government by strategy, "
        "with their responsible departments and contacts, as Linked Open Data."
    )
    publisher_ja: str = "東京都"
    publisher_en: str = "Tokyo Metropolitan Government"
    # The catalogue a portal harvests (DCAT-AP, README "Catalogue"): its title, the keywords of the dataset
    # (comma-separated), and how to reach the publisher (a web page, an e-mail address; "" for none).
    catalog_title_ja: str = "東京都 施策一覧 カタログ"
    catalog_title_en: str = "Tokyo Metropolitan Government: catalogue of policy measures"
    keywords_ja: str = "施策,東京都,行政,担当部署,連絡先"
    keywords_en: str = "policy measures,Tokyo,government,departments,contacts"
    contact_url: str = "https://www.metro.tokyo.lg.jp/"
    contact_email: str = ""
    # ISO 8601 dates; SOURCE_DATE_EPOCH, when set, overrides ``modified``.
    issued: str = "2026-11-27"
    modified: str = "2026-11-27"
    # How many editions the output directory keeps, the current one included (0: every one; they are small);
    # ``lodpub publish --to`` drops the store's graphs of the others, never the previous edition's.
    keep_editions: int = 0
    # Where the server's caches of each edition live (query store, search index); "" is ``<dist>.cache``
    # beside the published tree.
    cache_dir: str = ""
    # Serving (used by ``lodpub serve``)
    host: str = "127.0.0.1"
    port: int = 8000
    query_timeout: float = 10.0
    max_rows: int = 10_000
    max_query_bytes: int = 100_000
    max_response_bytes: int = 100_000_000
    result_cache_mb: int = 64  # 0 switches the result cache off
    workers: int = 0  # 0: one per core
    # Of the workers, those that query an in-memory copy: faster on most larger queries, ~5 KB per measure
    # each; at most workers - 1 (one always reads the disk store).
    memory_workers: int = 1
    # Workers, besides those, that answer from maplib's columnar model of the edition: a candidate engine
    # whose answer to a request is used only once it was found the same as pyoxigraph's (README "Engines").
    columnar_workers: int = 1
    # MiB a query worker may allocate besides its copy in memory (0: no limit). A query that needs more ends
    # its worker (503, replaced at once) and is not run again on that edition: pathological joins build
    # gigabytes of intermediate rows within the time limit. Researcher queries at 100,000 measures peak at
    # 230 MiB of data in a disk worker, a copy in memory 560 MiB besides (bench/RESULTS.md "Soak").
    worker_memory_mb: int = 1024
    # Seconds a starting server may spend answering, for nobody, the requests its edition's last server
    # answered last (kept in the edition's cache when it stopped), before /health says ready: their first
    # client meets the kind of worker, or the checked candidate, that answers them fastest (0: start cold).
    warm_seconds: float = 30.0
    page_size: int = 50  # links listed per page on a resource's HTML page
    # Switch to a new edition as soon as the published tree points to it (false: only on SIGHUP, e.g. to
    # roll an edition across several servers at a moment of the operator's choosing).
    follow_pointer: bool = True
    # A SPARQL 1.1 store that holds the editions (README "Remote stores"): its query endpoint ("" serves from
    # the embedded store), the query parameter in which it takes a time limit in milliseconds (Virtuoso:
    # "timeout"; "" for none), and its credentials: basic (user and password) or a bearer token. Never logged.
    store: str = ""
    store_timeout_parameter: str = ""
    store_user: str = ""
    store_password: str = ""
    store_token: str = ""
    # Overload (README "Overload"): a query's time limit counts from its arrival, its wait for a worker
    # included; at most ``queue_per_worker`` queries per worker wait in each lane (beyond: 503 at once), and one client
    # (by connecting address) has at most ``client_queries`` queries running or waiting (beyond: 429).
    queue_per_worker: int = 8
    client_queries: int = 4
    # HTTP limits (README "HTTP limits"), given to uvicorn and checked by http_limits in front of the app.
    # Connections (idle and slow ones included) and requests at once; beyond: 503. Each is a descriptor: the
    # server raises its soft limit of open files to the hard one and warns below this + 256.
    limit_concurrency: int = 4096
    timeout_keep_alive: float = 5.0  # seconds an idle connection is kept between requests (uvicorn's default)
    # Seconds a client has to send a request's headers (from connecting, for the first), then its body;
    # beyond: closed (408 if a request had begun). A slowloris client is cut off after this.
    header_timeout: float = 10.0
    max_header_bytes: int = 16_384  # all of a request's header fields together; beyond: 431 (nginx: 4 x 8 KB)
    max_headers: int = 100  # header fields in one request; beyond: 431 (Apache's LimitRequestFields)
    # Metrics in the Prometheus text format at /metrics: "loopback" answers only clients on loopback,
    # "open" everyone, "off" nobody (404).
    metrics: str = "loopback"

    @property
    def base(self) -> str:
        """The base IRI, always ending in a slash."""
        return self.base_iri if self.base_iri.endswith("/") else self.base_iri + "/"

    @property
    def vocab(self) -> str:
        return iris.vocabulary(self.base)

    @property
    def dataset_iri(self) -> str:
        return self.base + "data/" + self.dataset_slug

    @property
    def sparql_endpoint(self) -> str:
        return self.base + "sparql"


def _coerce(name: str, raw: Any, default: Any) -> Any:
    kind = type(default)
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        raise SettingsError(f"setting {name!r} must be true or false, not {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name!r} must be a {kind.__name__}, not {raw!r}") from None


class SettingsError(ValueError):
    """A setting has a value of the wrong type or an unknown name."""


def load_settings(config: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults, then ``lodpub.toml``, then ``LODPUB_*`` environment variables."""
    env = os.environ if environ is None else environ
    settings = Settings()
    known = {f.name: f for f in fields(Settings)}
    path = config or Path(env.get("LODPUB_CONFIG", CONFIG_FILE))
    values: dict[str, Any] = {}
    if path.is_file():
        with path.open("rb") as fh:
            try:
                table = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{path}: {exc}") from None
        for section in table.values() if all(isinstance(v, dict) for v in table.values()) else [table]:
            for key, value in section.items():
                if key not in known:
                    raise SettingsError(f"{path}: unknown setting {key!r}")
                values[key] = _coerce(key, value, getattr(settings, key))
    for name in known:
        raw = env.get("LODPUB_" + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw, getattr(settings, name))
    for name, choices in CHOICES.items():
        if name in values and values[name] not in choices:
            raise SettingsError(f"setting {name!r} must be one of {', '.join(choices)}, not {values[name]!r}")
    for name in URLS:
        value = values.get(name, "")
        if value and (not value.startswith(("http://", "https://")) or any(c in value for c in ' <>"{}|\\^`')):
            raise SettingsError(f"setting {name!r} must be an http:// or https:// URL, not {value!r}")
    email = values.get("contact_email", "")
    if email and (email.count("@") != 1 or any(c in email for c in ' <>"{}|\\^`:/')):
        raise SettingsError(f"setting 'contact_email' must be an e-mail address, not {email!r}")
    return replace(settings, **values)

"""What the build and the server both need to speak to a SPARQL store elsewhere: its credentials, and the
graph that holds each edition.

A store holds every edition it was given as the named graph of the edition's IRI
(``<dataset>/<edition>``, the IRI the DCAT description gives the edition): the
server reads one with ``default-graph-uri``, ``lodpub publish --to`` writes one with
the Graph Store Protocol. Credentials come from settings (``store_user`` and
``store_password`` for basic authentication, or ``store_token`` for a bearer token;
``LODPUB_STORE_*`` in the environment, or in the URL's ``user:password@``) and go to the
store only: nothing logs them, and a URL is shown without its password (``shown``).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

from lodpub.settings import Settings

REFUSED = {401: "401 Unauthorized", 403: "403 Forbidden"}


def edition_graph(settings: Settings, edition: str) -> str:
    return f"{settings.dataset_iri}/{edition}"


def credentials(settings: Settings) -> tuple[httpx.Auth | None, dict[str, str]]:
    """The authentication to send the store, as httpx takes it: basic, or a bearer token in a header."""
    auth = httpx.BasicAuth(settings.store_user, settings.store_password) if settings.store_user else None
    headers = {"Authorization": f"Bearer {settings.store_token}"} if settings.store_token else {}
    return auth, headers


class StoreProblem(Exception):
    """The store cannot serve an edition to lodpub: one line naming the store and what to do."""


def check(settings: Settings, graph: str) -> None:
    """Make sure, before a server starts reading ``settings.store``, that the store answers lodpub, takes its
    credentials and holds the edition's ``graph``: a server that cannot serve says so once, in a line, rather
    than starting and failing every request. Raises StoreProblem."""
    auth, headers = credentials(settings)
    try:
        response = httpx.get(settings.store, params={"query": "ASK { ?s ?p ?o }", "default-graph-uri": graph},
                             headers={**headers, "Accept": "application/sparql-results+json"}, auth=auth,
                             timeout=max(settings.query_timeout, 5.0))
    except httpx.HTTPError as exc:
        raise StoreProblem(unreachable(settings.store, exc, settings)) from None
    problem = refused(settings.store, response.status_code, given(settings))
    if problem is not None:
        raise StoreProblem(problem)
    if response.status_code != 200:
        raise StoreProblem(f"{shown(settings.store)}: the store answered {response.status_code} to a SPARQL query; "
                           "is it the store's query endpoint?")
    try:
        holds = response.json().get("boolean") is True
    except ValueError:
        holds = False
    if not holds:
        raise StoreProblem(f"{shown(settings.store)}: the store holds nothing in the graph <{graph}>: load the "
                           "edition into it first (lodpub publish --to)")


def given(settings: Settings) -> str:
    """Which credentials lodpub sends the store, in words (never their values)."""
    if settings.store_user:
        return f"basic credentials for the user {settings.store_user!r}"
    return "a bearer token" if settings.store_token else "no credentials"


def refused(url: str, status: int, sent: str) -> str | None:
    """What a store's 401 or 403 means to the operator, in one line naming the store and what to set; ``sent``
    says which credentials were sent (``given``). None for any other status."""
    if status not in REFUSED:
        return None
    if sent == "no credentials" and urlsplit(url).username:
        sent = "the basic credentials written into the URL"
    return (f"{shown(url)}: authentication to the store failed ({REFUSED[status]}; lodpub sent {sent}): set "
            "store_user and store_password (basic) or store_token (bearer) in lodpub.toml, or LODPUB_STORE_USER "
            "and LODPUB_STORE_PASSWORD or LODPUB_STORE_TOKEN in the environment")


def unreachable(url: str, exc: Exception, settings: Settings) -> str:
    """The line that says ``url`` could not be reached and why, with every secret taken out of the reason (a
    token with a stray newline is quoted whole by the HTTP library, a password in the URL is in it)."""
    reason = f"{type(exc).__name__}: {exc}"
    for secret in (settings.store_password, settings.store_token, urlsplit(url).password or ""):
        if secret:
            reason = reason.replace(secret, "***")
    return f"{shown(url)}: the store could not be reached ({reason})"


def shown(url: str) -> str:
    """``url`` as it may be shown or logged: a password written into it (``user:password@host``) left out."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))

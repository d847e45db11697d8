"""What the build and the server both need to speak to a SPARQL store elsewhere: its credentials, and the
graph that holds each edition.

A store holds every edition it was given as the named graph of the edition's IRI
(``<dataset>/<edition>``, the IRI the DCAT description gives the edition): the
server reads one with ``default-graph-uri``, ``lodpub publish --to`` writes one with
the Graph Store Protocol. Credentials come from settings (``store_user`` and
``store_password`` for basic authentication, or ``store_token`` for a bearer token;
``LODPUB_STORE_*`` in the environment) and go to the store only: nothing logs them.
"""

from __future__ import annotations

import httpx

from lodpub.settings import Settings


def edition_graph(settings: Settings, edition: str) -> str:
    return f"{settings.dataset_iri}/{edition}"


def credentials(settings: Settings) -> tuple[httpx.Auth | None, dict[str, str]]:
    """The authentication to send the store, as httpx takes it: basic, or a bearer token in a header."""
    auth = httpx.BasicAuth(settings.store_user, settings.store_password) if settings.store_user else None
    headers = {"Authorization": f"Bearer {settings.store_token}"} if settings.store_token else {}
    return auth, headers

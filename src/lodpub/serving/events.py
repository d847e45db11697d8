"""What an operator counts: one JSON line per event on the server's log, beside the access log's lines.

Each line is an object whose ``event`` names what happened (``grep -c '"event": "query_timeout"'``), with
the facts of that event and, where a person reads it, a ``message``. No traceback: an event that is
expected in normal operation (a timeout, a killed worker) is not an error of the server's.
"""

from __future__ import annotations

import json
import logging

from lodpub.serving.metrics import EVENTS

log = logging.getLogger("lodpub")


def event(name: str, level: int = logging.WARNING, /, **facts: object) -> None:
    """Log the event ``name`` with its ``facts`` as one line of JSON, and count it (metrics)."""
    EVENTS.labels(name).inc()
    if log.isEnabledFor(level):
        log.log(level, json.dumps({"event": name, **facts}, ensure_ascii=False, default=str))

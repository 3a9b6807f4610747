"""One SQLAlchemy engine per gradebook database and process, instead of one per ``Gradebook(...)``.

nbgrader's ``Gradebook`` builds a new engine every time it is opened (several times for each notebook
graded: intake, overwriting cells, saving grades, deadlines, late penalties), and an engine's cache of
compiled SQL goes with it, so every query is compiled again. :func:`reuse_engines` makes nbgrader hand
out this process's engine for a database URL instead. ``Gradebook.close`` still disposes of the engine's
connections, as before; only the engine, with its compiled statements, is kept (a few per process).
Installed by the pre-convert hook (``coursekit.intake``), so every door that autogrades has it.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

KEEP = 4  # engines kept per process (a test session opens many courses one after another)

_engines: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_lock = threading.Lock()


def engine(url: Any, **kwargs: Any) -> Any:
    """This process's engine for ``url`` and ``kwargs`` (made on first use; the least recently used beyond
    ``KEEP`` is disposed of). Keyed by process id too: a forked child never uses its parent's engine."""
    import sqlalchemy

    key = (os.getpid(), str(url), tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
    with _lock:
        found = _engines.pop(key, None)
        if found is None:
            found = sqlalchemy.create_engine(url, **kwargs)
        _engines[key] = found
        while len(_engines) > KEEP:
            _, oldest = _engines.popitem(last=False)
            oldest.dispose()
    return found


def reuse_engines() -> None:
    """Make ``nbgrader.api.Gradebook`` take its engine from :func:`engine` (idempotent)."""
    import nbgrader.api

    nbgrader.api.create_engine = engine

"""Opening nbgrader's gradebook without its two repeated costs, for every door that grades.

* One SQLAlchemy engine per gradebook database and process, instead of one per ``Gradebook(...)``:
  nbgrader builds a new engine every time it opens the gradebook (several times for each notebook graded:
  intake, overwriting cells, saving grades, deadlines, late penalties), and the engine's cache of compiled
  SQL goes with it, so every query is compiled again. ``Gradebook.close`` still disposes of the engine's
  connections, as before; only the engine, with its compiled statements, is kept (a few per process).
* The schema version a new gradebook is stamped with, read in this process from nbgrader's own migration
  scripts (once): nbgrader runs ``alembic heads`` as a program for every new database, about 2.9 CPU-s
  (each test course, each Gradescope run, each fresh course's first command).

:func:`reuse_engines` installs both. It is called by the pre-convert hook (``coursekit.intake``), so every
door that autogrades has it, and by the kit's own commands (``coursekit.course``, ``coursekit.grading``).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path
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


@cache
def alembic_head() -> str:
    """The newest revision of nbgrader's gradebook schema, what ``alembic heads`` prints first."""
    import nbgrader
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()


def reuse_engines() -> None:
    """Make ``nbgrader.api.Gradebook`` take its engine from :func:`engine` and stamp a new gradebook with
    :func:`alembic_head` (idempotent)."""
    import nbgrader.api

    nbgrader.api.create_engine = engine
    nbgrader.api.get_alembic_version = alembic_head

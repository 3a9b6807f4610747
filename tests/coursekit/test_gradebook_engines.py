"""nbgrader's Gradebook with one engine per database and process (coursekit/gradebook_engines.py): what
one opening writes the next reads, two open at once both work, statements compiled once stay compiled,
and a forked child or another database gets an engine of its own."""
from __future__ import annotations

import nbgrader.api
import pytest
import sqlite3
import subprocess

from nbgrader.api import Gradebook

from coursekit import gradebook_engines


@pytest.fixture
def reused(monkeypatch):
    monkeypatch.setattr(nbgrader.api, "create_engine", nbgrader.api.create_engine)  # put back afterwards
    monkeypatch.setattr(nbgrader.api, "get_alembic_version", nbgrader.api.get_alembic_version)
    monkeypatch.setattr(gradebook_engines, "_engines", type(gradebook_engines._engines)())
    gradebook_engines.reuse_engines()


def test_one_engine_per_database_and_its_compiled_statements_stay(reused, tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as first:
        first.add_student("ada", first_name="Ada")
        engine = first.engine
        first.find_student("ada")
        compiled = len(engine._compiled_cache)
    assert compiled > 0
    with Gradebook(url) as second:  # a new pool behind the same engine: it reads what the first wrote
        assert second.engine is engine
        assert second.find_student("ada").first_name == "Ada"
        assert len(engine._compiled_cache) >= compiled
    with Gradebook(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert other.engine is not engine
        with pytest.raises(nbgrader.api.MissingEntry):
            other.find_student("ada")


def test_two_open_at_once_and_one_closed_early(reused, tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    outer = Gradebook(url)
    try:
        outer.add_student("ada")
        with Gradebook(url) as inner:
            inner.add_student("bob")
        assert {s.id for s in outer.students} == {"ada", "bob"}  # the inner close disposed of the pool
    finally:
        outer.close()


def test_a_forked_child_and_old_databases_get_engines_of_their_own(reused, tmp_path, monkeypatch):
    urls = [f"sqlite:///{tmp_path / f'g{i}.db'}" for i in range(gradebook_engines.KEEP + 1)]
    first = gradebook_engines.engine(urls[0])
    assert gradebook_engines.engine(urls[0]) is first
    with monkeypatch.context() as child:
        child.setattr(gradebook_engines.os, "getpid", lambda: -1)
        assert gradebook_engines.engine(urls[0]) is not first  # another process id: another engine
    for url in urls[1:]:
        gradebook_engines.engine(url)
    assert len(gradebook_engines._engines) == gradebook_engines.KEEP
    assert urls[0] not in {key[1] for key in gradebook_engines._engines}  # the least recently used went


def test_a_new_gradebook_is_stamped_with_alembics_head_without_running_alembic(reused, tmp_path, monkeypatch):
    """The revision read in-process is what nbgrader's own way (the `alembic heads` program) gives."""
    stock = nbgrader.api._temp_alembic_ini  # nbgrader's get_alembic_version, run as it would be
    with stock("sqlite:///unused.db") as ini:
        printed = subprocess.run(["alembic", "-c", ini, "heads"], capture_output=True, text=True, check=True)
    assert gradebook_engines.alembic_head() == printed.stdout.split()[0]

    def no_program(*args, **kwargs):
        raise AssertionError(f"a program was run: {args}")

    monkeypatch.setattr(nbgrader.api.sp, "check_output", no_program)
    with Gradebook(f"sqlite:///{tmp_path / 'new.db'}") as gradebook:
        gradebook.add_student("ada")
    with sqlite3.connect(tmp_path / "new.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(printed.stdout.split()[0],)]

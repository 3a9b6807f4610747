"""Intake's own parts, without grading: metadata types, the link scan and quarantine at any depth, and
failing closed (fast; the doors themselves are tested in test_fail_closed.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from coursekit import intake
from coursekit.notebook import metadata_problem
from coursekit.testing.tiny_course import adder_notebook
from tests.coursekit.test_fail_closed import CELL_FIELDS, JSON_VALUES, WHOLE, _deep_link, malformed, plausible

EXPECTED = [intake.ExpectedNotebook("adder", frozenset({"intro", "add", "test_add", "why"}), {})]


@pytest.mark.parametrize("field", [*CELL_FIELDS, *WHOLE])
def test_every_json_type_in_every_field_is_judged_without_an_exception(field, tmp_path):
    for kind, value in JSON_VALUES.items():
        path = tmp_path / "adder.ipynb"
        path.write_text(malformed(adder_notebook(), field, value))
        nb, problem = intake.read_notebook(path)
        if not plausible(field, value):
            assert nb is None and problem, (field, kind)
        found = intake.inspect(tmp_path, EXPECTED)  # never raises
        assert ("adder" in found.ungradable) == (nb is None), (field, kind, found.reasons)


@pytest.mark.parametrize("field", [*CELL_FIELDS, *WHOLE])
def test_every_refused_notebook_is_named_by_file_and_field(field, tmp_path):
    """Also where nbformat's schema would refuse the notebook first (cell metadata, kernelspec or
    language_info not an object), whose own message names no field."""
    for kind, value in JSON_VALUES.items():
        if plausible(field, value):
            continue
        path = tmp_path / "hw.ipynb"
        path.write_text(malformed(adder_notebook(), field, value))
        _, problem = intake.read_notebook(path)
        assert problem.startswith("hw.ipynb: malformed metadata (") and field.split(".")[-1] in problem, (kind, problem)
        where = "notebook metadata" if field in ("kernelspec", "language_info") else "cell 3:"
        assert where in problem, (kind, problem)


def test_a_schema_error_says_where_it_is(tmp_path):
    nb = json.loads(nbformat.writes(adder_notebook()))
    nb["cells"][1]["source"] = 7
    (tmp_path / "hw.ipynb").write_text(json.dumps(nb))
    _, problem = intake.read_notebook(tmp_path / "hw.ipynb")
    assert problem.startswith("hw.ipynb: valid JSON but not a valid notebook (cell 2 source: "), problem
    (tmp_path / "hw.ipynb").write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {"x": 1' + "1" * 5000 + "}}")
    _, problem = intake.read_notebook(tmp_path / "hw.ipynb")  # an integer too long for Python: no exception
    assert problem.startswith("hw.ipynb: not valid JSON ("), problem


def test_the_honest_notebook_has_no_metadata_problem():
    assert metadata_problem(adder_notebook()) is None


def test_links_of_every_kind_are_moved_out_at_any_depth(tmp_path):
    folder = tmp_path / "submitted" / "s" / "tiny"
    folder.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    nbformat.write(adder_notebook(), str(folder / "adder.ipynb"))
    (folder / "link.ipynb").symlink_to(folder / "adder.ipynb")
    os.link(secret, folder / "hard.txt")
    os.mkfifo(folder / "pipe")
    _deep_link(folder, secret, levels=420)  # deeper than PATH_MAX: os.walk would skip it silently
    found = intake.prepare(folder, EXPECTED, tmp_path, "s", "tiny")
    assert not found.failed, found.reasons
    kinds = sorted(r.split(": ")[1] for r in found.reasons if "moved out" in r)
    assert kinds == ["hard link moved out of the submission, not used", "special file moved out of the submission, "
                     "not used", "symbolic link moved out of the submission, not used",
                     "symbolic link moved out of the submission, not used"], found.reasons
    assert intake._odd_entries(folder) == []
    assert len(list((tmp_path / intake.QUARANTINE / "s" / "tiny").iterdir())) == 4
    assert secret.read_text() == "secret"  # moved names, never the files they point at


def test_intake_that_cannot_finish_fails_closed(tmp_path):
    folder = tmp_path / "submitted" / "s" / "tiny"
    folder.mkdir(parents=True)
    nbformat.write(adder_notebook(), str(folder / "adder.ipynb"))
    (folder / "x").symlink_to("/etc/shadow")
    (tmp_path / intake.QUARANTINE).mkdir(parents=True)
    (tmp_path / intake.QUARANTINE / "s").write_text("in the way")
    found = intake.prepare(folder, EXPECTED, tmp_path, "s", "tiny")
    assert found.failed and found.notebooks == {} and found.ungradable == ["adder"]
    assert found.reasons == [found.failed] and "intake could not finish" in found.failed


def test_a_submission_reached_through_a_link_fails_closed(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    nbformat.write(adder_notebook(), str(real / "adder.ipynb"))
    (tmp_path / "submitted" / "s").mkdir(parents=True)
    (tmp_path / "submitted" / "s" / "tiny").symlink_to(real)
    found = intake.prepare(tmp_path / "submitted" / "s" / "tiny", EXPECTED, tmp_path, "s", "tiny")
    assert found.failed and found.notebooks == {}


def test_a_list_grade_id_does_not_stop_inspection(tmp_path):
    nb = json.loads(nbformat.writes(adder_notebook()))
    nb["cells"][2]["metadata"]["nbgrader"]["grade_id"] = ["a", "b"]
    (tmp_path / "adder.ipynb").write_text(json.dumps(nb))
    found = intake.inspect(tmp_path, EXPECTED)
    assert found.ungradable == ["adder"]
    assert any("malformed metadata (cell 3: nbgrader grade_id is a list)" in r for r in found.reasons)


def test_nbgraders_timestamp_read_before_the_hook_never_opens_a_fifo(tmp_path):
    """Without --force, nbgrader reads timestamp.txt before any hook runs: a FIFO would block it forever."""
    import logging
    from types import SimpleNamespace

    from nbgrader.converters import Autograde

    source, dest = tmp_path / "submitted" / "s" / "tiny", tmp_path / "autograded" / "s" / "tiny"
    source.mkdir(parents=True)
    dest.mkdir(parents=True)
    os.mkfifo(source / "timestamp.txt")
    converter = SimpleNamespace(force=False, log=logging.getLogger("test"), _format_source=lambda a, s: str(source),
                                _format_dest=lambda a, s: str(dest))
    assert getattr(Autograde.init_destination, "coursekit_guard", False)
    assert Autograde.init_destination(converter, "tiny", "s") is False  # returns at once, the FIFO unopened


def test_the_instructors_own_modules_never_count_as_shadowing(tmp_path):
    """A submission's copy of the helper package is the released one, replaced at grading: whether the
    grader's own sys.path happens to import a module of that name (here: `json`) must not matter."""
    source = tmp_path / "source"
    (source / "json").mkdir(parents=True)
    (source / "json" / "__init__.py").write_text("")
    (source / "adder.ipynb").write_text("{}")
    assert intake.instructor_names(source) == {"json", "adder.ipynb"}
    folder = tmp_path / "submission"
    for package in ("json", "numpy"):
        (folder / package).mkdir(parents=True)
        (folder / package / "__init__.py").write_text("")
    reasons = intake.inspect(folder, EXPECTED, intake.instructor_names(source)).reasons
    assert [r for r in reasons if "shadow" in r] == ["numpy: would shadow the installed module 'numpy', not used"]
    assert len([r for r in intake.inspect(folder, EXPECTED).reasons if "shadow" in r]) == 2  # without: both

"""coursekit collect: one hostile upload is refused with a reason, the others are collected, and a
refused student keeps the previous submission."""
from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.collect import collect
from coursekit.course import Course
from coursekit.testing.tiny_course import ASSIGNMENT, make_course


@pytest.fixture
def course(tmp_path) -> Course:
    return Course.open(make_course(tmp_path / "course"))


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def honest(folder: Path, text: str = "honest") -> Path:
    return zip_of(folder / "honest.zip", {"adder.ipynb": text.encode(), "squares.ipynb": b"{}"})


def line_of(lines: list[str], student: str) -> str:
    return next(line for line in lines if Path(line.split(":")[0]).stem == student or line.startswith(student + ":"))


def submitted(course: Course, student: str) -> Path:
    return course.folder("submitted", student, ASSIGNMENT)


def test_hostile_uploads_are_refused_while_the_honest_student_is_collected(course, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    long_path = "/".join(["d"] * 2000) + "/x.ipynb"  # about 4 KB: the `File name too long` of the issue
    deep = "/".join(["d"] * 40) + "/x.ipynb"
    bomb = uploads / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("adder.ipynb", "w", force_zip64=True) as f:
        zero = bytes(1 << 20)
        for _ in range(120):  # 120 MiB of zeros: more than the 100 MiB cap, about 120 KB zipped
            f.write(zero)
    paths = [
        zip_of(uploads / "deep.zip", {deep: b"{}"}),
        zip_of(uploads / "longpath.zip", {long_path: b"{}"}),
        bomb,
        zip_of(uploads / "many.zip", {f"f{i}.txt": b"x" for i in range(1001)}),
        zip_of(uploads / "longname.zip", {"n" * 300 + ".ipynb": b"{}"}),
        zip_of(uploads / "escape.zip", {"../../escape.txt": b"x"}),
        zip_of(uploads / "absolute.zip", {"/etc/evil.txt": b"x"}),
        honest(uploads),
    ]
    link = zipfile.ZipInfo("link.ipynb")
    link.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(uploads / "linked.zip", "w") as zf:
        zf.writestr(link, "/etc/passwd")
    paths.insert(0, uploads / "linked.zip")
    assert bomb.stat().st_size < 1024 * 1024
    lines = collect(course, ASSIGNMENT, paths)
    assert len(lines) == len(paths)  # one line per student
    expected = {"deep": "deeper than 16 levels", "longpath": "path longer than 1024 bytes", "bomb": "more than 100 MiB", "many": "1001 files, more than 1000",
                "longname": "longer than 255 bytes", "escape": "leaving the submission folder",
                "absolute": "absolute path", "linked": "link 'link.ipynb'"}
    for student, reason in expected.items():
        line = line_of(lines, student)
        assert "refused" in line and reason in line, line
        assert not submitted(course, student).exists()
    assert line_of(lines, "honest").startswith("honest: collected into")
    assert (submitted(course, "honest") / "adder.ipynb").read_text() == "honest"
    assert not list(course.folder("submitted").rglob("*.incoming-*"))
    assert not (course.root.parent / "escape.txt").exists() and not course.folder("submitted", "etc").exists()


def test_a_refused_upload_keeps_the_previous_submission(course, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    collect(course, ASSIGNMENT, [honest(first, "version 1")])
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = collect(course, ASSIGNMENT, [zip_of(bad / "honest.zip", {"a/../../x": b"x"})])
    assert "refused" in lines[0] and "previous submission, if any, unchanged" in lines[0]
    assert (submitted(course, "honest") / "adder.ipynb").read_text() == "version 1"
    assert sorted(p.name for p in submitted(course, "honest").parent.iterdir()) == [ASSIGNMENT]
    second = tmp_path / "second"
    second.mkdir()
    lines = collect(course, ASSIGNMENT, [honest(second, "version 2")])
    assert "previous submission kept as tiny.previous-1" in lines[0]
    assert (submitted(course, "honest") / "adder.ipynb").read_text() == "version 2"


def test_headers_that_lie_about_the_size_do_not_get_past_the_cap(course, tmp_path):
    """A member whose headers declare 10 bytes but hold 3 MiB: refused (zipfile stops at the declared size
    and the CRC fails; collect also counts the bytes it writes against the cap)."""
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("adder.ipynb", bytes(3 * 1024 * 1024))
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size fields
        at = data.index(signature)
        data[at + offset:at + offset + 4] = struct.pack("<I", 10)
    path.write_bytes(bytes(data))
    assert zipfile.ZipFile(path).infolist()[0].file_size == 10
    lines = collect(course, ASSIGNMENT, [path], max_bytes=1024 * 1024)
    assert "refused" in lines[0]
    assert not submitted(course, "liar").exists()


def test_folders_are_checked_like_zips(course, tmp_path):
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "adder.ipynb").write_text("{}")
    os.symlink("/etc/passwd", linked / "squares.ipynb")
    big = tmp_path / "big"
    big.mkdir()
    (big / "adder.ipynb").write_bytes(bytes(2 * 1024 * 1024))
    fine = tmp_path / "fine"
    (fine / "sub").mkdir(parents=True)
    (fine / "adder.ipynb").write_text("fine")
    (fine / "sub" / "notes.txt").write_text("notes")
    lines = collect(course, ASSIGNMENT, [linked, big, fine], max_bytes=1024 * 1024)
    assert "refused (link 'squares.ipynb')" in lines[0]
    assert "refused" in lines[1] and "more than 1 MiB" in lines[1]
    assert lines[2].startswith("fine: collected")
    assert (submitted(course, "fine") / "sub" / "notes.txt").read_text() == "notes"


def test_cli_flags_set_the_caps(course, tmp_path, capsys):
    upload = zip_of(tmp_path / "three.zip", {"a.txt": b"1", "b.txt": b"2", "c.txt": b"3"})
    code = main(["--course-dir", str(course.root), "collect", "--assignment", ASSIGNMENT, "--max-files", "2",
                 str(upload), str(honest(tmp_path))])
    out = capsys.readouterr().out
    assert code == 0
    assert "three.zip: refused (3 files, more than 2)" in out
    assert "honest: collected" in out


def test_hard_links_fifos_and_swapped_files_are_refused_and_collected_folders_are_owner_only(course, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    hard = tmp_path / "hard"
    hard.mkdir()
    os.link(secret, hard / "adder.ipynb")
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "pipe")  # opening it for reading would block: collect never opens it
    fine = tmp_path / "fine"
    (fine / "sub").mkdir(parents=True)
    (fine / "adder.ipynb").write_text("fine")
    (fine / "sub" / "notes.txt").write_text("notes")
    os.chmod(fine / "sub", 0o777)
    os.chmod(fine / "adder.ipynb", 0o666)
    lines = collect(course, ASSIGNMENT, [hard, fifo, fine])
    assert "refused (hard link 'adder.ipynb')" in lines[0]
    assert "refused (special file 'pipe')" in lines[1]
    assert lines[2].startswith("fine: collected")
    folder = submitted(course, "fine")
    for path in [folder.parent, folder, *folder.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


def test_a_file_swapped_for_a_link_while_it_is_copied_is_refused(course, tmp_path, monkeypatch):
    from coursekit import collect as collect_module

    upload = tmp_path / "racer"
    upload.mkdir()
    (upload / "adder.ipynb").write_text("{}")
    checked = collect_module._check_name

    def swap_after_the_check(name, limits):  # the student swaps the file once the names were checked
        parts = checked(name, limits)
        if name == "adder.ipynb" and not (upload / "adder.ipynb").is_symlink():
            (upload / "adder.ipynb").unlink()
            (upload / "adder.ipynb").symlink_to("/etc/shadow")
        return parts

    monkeypatch.setattr(collect_module, "_check_name", swap_after_the_check)
    [line] = collect(course, ASSIGNMENT, [upload])
    assert "refused" in line and "adder.ipynb" in line, line
    assert not submitted(course, "racer").exists()

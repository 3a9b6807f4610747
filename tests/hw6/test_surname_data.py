"""hw6utils.surname_data: download, mirror, checksum and resolution paths (no network, made-up fixture)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import os
import threading
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_PATH = REPO_ROOT / "source" / "hw6" / "hw6utils" / "surname_data.py"
REAL_MIRROR = Path(os.environ.get("HW6_DATA_MIRROR", REPO_ROOT.parent / "shared" / "data" / "names"))

# A tiny made-up data set (NOT the real names).
FIXTURE = {"Alpha.txt": "Zorbin\nQuell\nVastra\n", "Beta.txt": "Mirtal\nOsk\n"}
FIXTURE_SHA = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in FIXTURE.items()}


@pytest.fixture()
def sd(monkeypatch):
    """A fresh copy of the module with no data-related environment variables."""
    for var in ("HW6_DATA_DIR", "HW6_DATA_MIRROR", "HW6_DATA_URL"):
        monkeypatch.delenv(var, raising=False)
    spec = importlib.util.spec_from_file_location("surname_data_under_test", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_zip(path: Path, files: dict[str, str], extra: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data/eng-fra.txt", "not a name file\n")
        for name, text in files.items():
            z.writestr(f"data/names/{name}", text)
        for member, text in (extra or {}).items():
            z.writestr(member, text)
    return path


def make_dir(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_download_from_file_url(sd, tmp_path):
    archive = make_zip(tmp_path / "data.zip", FIXTURE, extra={"data/names/sub/Alpha.txt": "evil\n"})
    dest = sd.ensure_data(tmp_path / "names", url=archive.as_uri(), expected=FIXTURE_SHA, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["Alpha.txt", "Beta.txt"]  # eng-fra.txt not extracted
    assert (dest / "Alpha.txt").read_text() == FIXTURE["Alpha.txt"]


def test_download_from_local_http_server(sd, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    make_zip(served / "data.zip", FIXTURE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/data.zip"
        dest = sd.ensure_data(tmp_path / "names", url=url, expected=FIXTURE_SHA, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert sd.verify_dir(dest, FIXTURE_SHA) == FIXTURE_SHA


def test_download_url_from_environment(sd, tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "data.zip", FIXTURE)
    monkeypatch.setenv("HW6_DATA_URL", archive.as_uri())
    dest = sd.ensure_data(tmp_path / "names", expected=FIXTURE_SHA, progress=False)
    assert (dest / "Beta.txt").is_file()


def test_download_with_corrupted_member_writes_nothing(sd, tmp_path):
    archive = make_zip(tmp_path / "data.zip", dict(FIXTURE, **{"Beta.txt": "Mirtal\nOsk\nTampered\n"}))
    with pytest.raises(sd.SurnameDataError) as err:
        sd.ensure_data(tmp_path / "names", url=archive.as_uri(), expected=FIXTURE_SHA, progress=False)
    message = str(err.value)
    assert "Beta.txt" in message and "corrupted" in message and sd.DATA_URL in message
    assert not (tmp_path / "names" / "Alpha.txt").exists()


def test_download_with_missing_member(sd, tmp_path):
    archive = make_zip(tmp_path / "data.zip", {"Alpha.txt": FIXTURE["Alpha.txt"]})
    with pytest.raises(sd.SurnameDataError, match=r"has no Beta\.txt"):
        sd.ensure_data(tmp_path / "names", url=archive.as_uri(), expected=FIXTURE_SHA, progress=False)


def test_download_of_a_non_zip(sd, tmp_path):
    bogus = tmp_path / "data.zip"
    bogus.write_text("<html>not found</html>")
    with pytest.raises(sd.SurnameDataError, match="not a zip file"):
        sd.ensure_data(tmp_path / "names", url=bogus.as_uri(), expected=FIXTURE_SHA, progress=False)


def test_download_failure_is_one_clear_error(sd, tmp_path):
    with pytest.raises(sd.SurnameDataError, match="could not download"):
        sd.ensure_data(tmp_path / "names", url=(tmp_path / "absent.zip").as_uri(), expected=FIXTURE_SHA,
                       progress=False)


def test_offline_message_tells_a_student_what_to_do(sd, tmp_path, monkeypatch):
    """Offline, the message names the zip to download and the folder to put the files in; it says nothing
    about instructor commands or CI."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HW6_DATA_URL", (tmp_path / "unreachable.zip").as_uri())
    with pytest.raises(sd.SurnameDataError) as err:
        sd.ensure_data(expected=FIXTURE_SHA, progress=False)
    message = str(err.value)
    assert message.startswith("could not download the surname data from")
    assert f"download {sd.DATA_URL}" in message and "https://download.pytorch.org/tutorial/data.zip" in message
    assert f"copy the 18 files of its data/names folder into {tmp_path / 'data' / 'names'}" in message
    for staff_only in ("coursekit", "fetch-data", "instructor", "CI", "HW6_DATA_MIRROR"):
        assert staff_only not in message, staff_only


def test_files_put_in_data_names_next_to_the_notebook_are_used(sd, tmp_path, monkeypatch):
    """What the message advises works: the files in ./data/names are found and verified, nothing is fetched."""
    notebook_dir = tmp_path / "hw6"
    make_dir(notebook_dir / "data" / "names", FIXTURE)
    monkeypatch.chdir(notebook_dir)
    monkeypatch.setenv("HW6_DATA_URL", (tmp_path / "unreachable.zip").as_uri())
    assert sd.ensure_data(expected=FIXTURE_SHA, progress=False) == notebook_dir / "data" / "names"


def test_mirror_is_copied_and_verified(sd, tmp_path, monkeypatch):
    mirror = make_dir(tmp_path / "mirror", FIXTURE)
    monkeypatch.setenv("HW6_DATA_MIRROR", str(mirror))
    dest = sd.ensure_data(tmp_path / "names", url="file:///nonexistent.zip", expected=FIXTURE_SHA, progress=False)
    assert (dest / "Alpha.txt").read_text() == FIXTURE["Alpha.txt"]


def test_corrupted_mirror_file_is_named(sd, tmp_path, monkeypatch):
    mirror = make_dir(tmp_path / "mirror", dict(FIXTURE, **{"Alpha.txt": "Zorbin\n"}))
    monkeypatch.setenv("HW6_DATA_MIRROR", str(mirror))
    with pytest.raises(sd.SurnameDataError, match=r"Alpha\.txt from mirror .* is corrupted"):
        sd.ensure_data(tmp_path / "names", expected=FIXTURE_SHA, progress=False)


def test_mirror_missing_file_and_missing_folder(sd, tmp_path, monkeypatch):
    mirror = make_dir(tmp_path / "mirror", {"Alpha.txt": FIXTURE["Alpha.txt"]})
    monkeypatch.setenv("HW6_DATA_MIRROR", str(mirror))
    with pytest.raises(sd.SurnameDataError, match=r"mirror file .*Beta\.txt is missing"):
        sd.ensure_data(tmp_path / "names", expected=FIXTURE_SHA, progress=False)
    monkeypatch.setenv("HW6_DATA_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(sd.SurnameDataError, match="does not exist"):
        sd.ensure_data(tmp_path / "names2", expected=FIXTURE_SHA, progress=False)


def test_relative_mirror_resolves_against_course_root(sd, tmp_path, monkeypatch):
    course = tmp_path / "course"
    (course / "autograded" / "ann" / "hw6").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("")
    make_dir(tmp_path / "shared" / "data" / "names", FIXTURE)
    monkeypatch.chdir(course / "autograded" / "ann" / "hw6")
    assert sd.resolve_mirror("../shared/data/names") == (tmp_path / "shared" / "data" / "names").resolve()


def test_existing_folder_with_a_missing_file(sd, tmp_path):
    dest = make_dir(tmp_path / "names", {"Alpha.txt": FIXTURE["Alpha.txt"]})
    with pytest.raises(sd.SurnameDataError) as err:
        sd.ensure_data(dest, expected=FIXTURE_SHA, progress=False)
    assert "Beta.txt is missing" in str(err.value) and f"copy the 18 files of its data/names folder into {dest}" \
        in str(err.value)


def test_existing_folder_with_a_corrupted_file_is_not_replaced(sd, tmp_path, monkeypatch):
    dest = make_dir(tmp_path / "names", dict(FIXTURE, **{"Beta.txt": "Mirtal\r\nOsk\r\n"}))
    monkeypatch.setenv("HW6_DATA_MIRROR", str(make_dir(tmp_path / "mirror", FIXTURE)))
    with pytest.raises(sd.SurnameDataError, match=r"Beta\.txt is corrupted: sha256 [0-9a-f]{64}, expected"):
        sd.ensure_data(dest, expected=FIXTURE_SHA, progress=False)
    assert (dest / "Beta.txt").read_bytes() == b"Mirtal\r\nOsk\r\n"
    # --force (coursekit fetch-data --force) replaces it from the mirror
    sd.ensure_data(dest, expected=FIXTURE_SHA, force=True, progress=False)
    assert (dest / "Beta.txt").read_text() == FIXTURE["Beta.txt"]


def test_empty_folder_without_fetch(sd, tmp_path):
    with pytest.raises(sd.SurnameDataError, match="has none of the 2 files"):
        sd.ensure_data(tmp_path / "names", fetch=False, expected=FIXTURE_SHA)


def test_resolution_order(sd, tmp_path, monkeypatch):
    course = tmp_path / "course"
    student = course / "autograded" / "ann" / "hw6"
    student.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("")
    monkeypatch.chdir(student)
    # 4. nothing found: the course root's data/names
    assert sd.resolve_data_dir() == course / "data" / "names"
    # 3. a data/names folder found walking up from the current directory
    (course / "data" / "names").mkdir(parents=True)
    assert sd.resolve_data_dir() == course / "data" / "names"
    (student / "data" / "names").mkdir(parents=True)
    assert sd.resolve_data_dir() == student / "data" / "names"
    # 2. HW6_DATA_DIR beats walking up
    monkeypatch.setenv("HW6_DATA_DIR", str(tmp_path / "env"))
    assert sd.resolve_data_dir() == tmp_path / "env"
    # 1. the explicit path beats everything
    assert sd.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_no_course_root_falls_back_to_cwd(sd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sd.resolve_data_dir() == tmp_path / "data" / "names"


def test_combined_checksum_rule(sd):
    digests = {"b.txt": "2" * 64, "a.txt": "1" * 64}
    expected = hashlib.sha256(("1" * 64 + "\n" + "2" * 64 + "\n").encode()).hexdigest()
    assert sd.combined_sha256(digests) == expected


@pytest.mark.skipif(not REAL_MIRROR.is_dir(), reason="needs the verified mirror (HW6_DATA_MIRROR)")
def test_real_mirror_loads_sorted_with_source_md_facts(sd, tmp_path, monkeypatch):
    monkeypatch.setenv("HW6_DATA_MIRROR", str(REAL_MIRROR))
    names, combined = sd.load_names(tmp_path / "names", progress=False)
    assert combined == sd.EXPECTED_COMBINED_SHA256
    assert list(names) == sorted(names) and len(names) == 18
    assert sum(len(v) for v in names.values()) == 20074
    assert len(names["Arabic"]) == 2000 and len(set(names["Arabic"])) == 108


def test_unwritable_destination_is_one_clear_error(sd, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HW6_DATA_MIRROR", str(make_dir(tmp_path / "mirror", FIXTURE)))
    with pytest.raises(sd.SurnameDataError, match="cannot write the surname data"):
        sd.ensure_data(blocker / "names", expected=FIXTURE_SHA, progress=False)

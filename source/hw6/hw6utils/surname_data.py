"""Fetch and verify the surname data of Problem 4 (PyTorch char-RNN tutorial, 18 files).

The data are never committed: this module copies them from a local mirror or downloads the
tutorial's public zip, and checks every file against the sha256 table below, so every student and
the autograder train on byte-identical data.

Where the data folder is (``resolve_data_dir``), first match wins:

1. the ``path`` argument, if given;
2. the environment variable ``HW6_DATA_DIR``;
3. a ``data/names`` folder found by walking up from the current directory (the notebook folder,
   or ``autograded/<student>/hw6/`` under the course root when nbgrader autogrades);
4. otherwise ``<course root>/data/names`` (course root = the nearest folder upwards holding
   ``nbgrader_config.py``), or ``./data/names`` when there is none.

If that folder holds none of the 18 files, ``ensure_data`` fills it (unless ``fetch=False``):

a. from the mirror folder in ``HW6_DATA_MIRROR`` (copied, then verified), if the variable is set;
b. otherwise by downloading ``DATA_URL`` (override with ``HW6_DATA_URL``) and extracting only
   ``data/names/*.txt``.

A folder that holds some files but not all, or a file whose checksum differs, is an error (one
``SurnameDataError`` that names the file and says what a student can do: copy the 18 files of the
tutorial zip into ``data/names``); nothing is silently replaced. Instructors fill the course's folder
with ``coursekit fetch-data`` (options ``--mirror``, ``--dest``, ``--force``).
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path

DATA_URL = "https://download.pytorch.org/tutorial/data.zip"
ZIP_PREFIX = "data/names/"

# sha256 of every file, from shared/data/names/SOURCE.md (20,074 lines in total).
EXPECTED_SHA256: dict[str, str] = {
    "Arabic.txt": "6f424a8dbe51cbbbabab7a57d38b617210125e4e3991f3c657cb79b8f104bafc",
    "Chinese.txt": "49263ef55a8cb1740e841d65cad8214b2f9b5b869bc534c811746422496fa91e",
    "Czech.txt": "145bbbd6d0816578f03388e92c264d39ef1c60df920b081d371fa5c5cc055a8e",
    "Dutch.txt": "924f32b635170eae561f84538632138fc07d4c8bbd70ba3fb980de1ecc4d2af3",
    "English.txt": "9cca037066d3d5989e24bc01801416162de506b5e28e15b7c092a47905d29bf2",
    "French.txt": "81e65b36c60ed5b89a17422f6edcadbb89546f38ad69e960e64e7ba682012a95",
    "German.txt": "7449cd590b97a733e18d613a4155decd77ec35dc5f8aadd7a82204dce4f051db",
    "Greek.txt": "3555b5186de7f401e6d991b088e9e644ca3099116477818c25ab5793801389e6",
    "Irish.txt": "cf8c7013256252a88d2503127b87282a11f21b2ff6db1bded68834c19a1ec058",
    "Italian.txt": "f88414c27d0606a11a678b4859277828c2565d6cc4d9ee932deef6e94f3b35e4",
    "Japanese.txt": "e0e717e114fec3e7eade4d9dabe0067c475f43147e36a22b47902ee76ad9e67f",
    "Korean.txt": "cd54221ccb362a6cba4c78828838cf3268a0e59744767a37cf6ec4b74036b136",
    "Polish.txt": "45bab898af2f60ed3a728bbf6980e28821011a7caa53227553b5785903a40826",
    "Portuguese.txt": "50a8735f41f4f73757c8ce5b16cb0275cd86b2b214bcbc8c9805f508cb131c53",
    "Russian.txt": "43b3e64ce351f77f1ac9e0cdf7566012d127f4371875fd25208845b5c9d6f7c3",
    "Scottish.txt": "78d0252711d87d948ea86fe34826c51d2d794a8e52d15b5d6f7b6244d45d62dd",
    "Spanish.txt": "1bcb462ed3316756a85781d68232bddae04498fdddd5d9219c53fd1fbdeba7a7",
    "Vietnamese.txt": "f3f9e4164ab47601178a6e45b216464a64122f49d05541f24bf18a757253281d",
}
# `sha256sum *.txt | awk '{print $1}' | sha256sum` over the 18 files (see combined_sha256).
EXPECTED_COMBINED_SHA256 = "264ee4af21f8cd748d7af96d7cbf03f5933ac0e60a580903295ba23365d81c24"



def how_to_fix(folder: Path | str | None = None) -> str:
    """What a student can do about missing or bad data files (ends every SurnameDataError message)."""
    where = folder or "data/names next to the notebook"
    return (f"To fix it, download {DATA_URL} (about 3 MB), unzip it and copy the 18 files of its data/names "
            f"folder into {where}; when you are online, the notebook downloads them itself into an empty "
            f"data/names folder.")


class SurnameDataError(RuntimeError):
    """Missing, incomplete or corrupted surname data (the message says which file and how to fix it)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(Path(path).read_bytes())


def combined_sha256(digests: dict[str, str]) -> str:
    """One checksum for the whole set: sha256 of the per-file digests, one per line, files sorted by name."""
    text = "".join(digests[name] + "\n" for name in sorted(digests))
    return sha256_bytes(text.encode("ascii"))


def course_root(start: Path | None = None) -> Path | None:
    """Nearest folder at or above ``start`` holding ``nbgrader_config.py`` (None if there is none)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file():
            return folder
    return None


def resolve_data_dir(path: str | os.PathLike | None = None, start: Path | None = None) -> Path:
    """The data folder to use, by the resolution order in the module docstring (it may not exist yet)."""
    if path is not None:
        return Path(path).expanduser().resolve()
    env = os.environ.get("HW6_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "data" / "names").is_dir():
            return folder / "data" / "names"
    root = course_root(here)
    return (root or here) / "data" / "names"


def resolve_mirror(mirror: str | os.PathLike | None = None, start: Path | None = None) -> Path | None:
    """The mirror folder from the argument or ``HW6_DATA_MIRROR``; a relative path is tried against the
    current directory first, then against the course root (CI gives it relative to the repository)."""
    value = mirror if mirror is not None else os.environ.get("HW6_DATA_MIRROR")
    if not value:
        return None
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return candidate
    here = Path(start or Path.cwd()).resolve()
    options = [here / candidate]
    root = course_root(here)
    if root is not None:
        options.append(root / candidate)
    for option in options:
        if option.is_dir():
            return option.resolve()
    return options[0]


def verify_dir(folder: Path, expected: dict[str, str] | None = None) -> dict[str, str]:
    """Check every expected file in ``folder``; return {file: sha256} or raise one SurnameDataError."""
    expected = EXPECTED_SHA256 if expected is None else expected
    folder = Path(folder)
    if not folder.is_dir():
        raise SurnameDataError(f"surname data folder {folder} does not exist. {how_to_fix(folder)}")
    digests: dict[str, str] = {}
    for name, want in sorted(expected.items()):
        file = folder / name
        if not file.is_file():
            raise SurnameDataError(f"surname data file {file} is missing. {how_to_fix(folder)}")
        got = sha256_file(file)
        if got != want:
            raise SurnameDataError(f"surname data file {file} is corrupted: sha256 {got}, expected {want}. "
                                   f"Delete the folder {folder} and run the cell again to download a fresh "
                                   f"copy. {how_to_fix(folder)}")
        digests[name] = got
    return digests


def _write_verified(dest: Path, contents: dict[str, bytes], expected: dict[str, str], origin: str) -> None:
    """Verify all files first, then write them atomically (a temp file renamed into place)."""
    for name, want in sorted(expected.items()):
        if name not in contents:
            raise SurnameDataError(f"{origin} has no {name}. {how_to_fix(dest)}")
        got = sha256_bytes(contents[name])
        if got != want:
            raise SurnameDataError(f"{name} from {origin} is corrupted: sha256 {got}, expected {want}. "
                                   f"{how_to_fix(dest)}")
    dest.mkdir(parents=True, exist_ok=True)
    for name in sorted(expected):
        handle, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.")
        with os.fdopen(handle, "wb") as out:
            out.write(contents[name])
        os.chmod(tmp, 0o644)  # public data: readable by the grader's sandboxed kernels too
        os.replace(tmp, dest / name)


def copy_from_mirror(mirror: Path, dest: Path, expected: dict[str, str] | None = None) -> None:
    """Copy the expected files from a local mirror folder into ``dest``, verifying each one."""
    expected = EXPECTED_SHA256 if expected is None else expected
    mirror = Path(mirror)
    if not mirror.is_dir():
        raise SurnameDataError(f"mirror folder {mirror} (HW6_DATA_MIRROR) does not exist. {how_to_fix(dest)}")
    contents = {}
    for name in expected:
        if not (mirror / name).is_file():
            raise SurnameDataError(f"mirror file {mirror / name} is missing. {how_to_fix(dest)}")
        contents[name] = (mirror / name).read_bytes()
    _write_verified(Path(dest), contents, expected, f"mirror {mirror}")


def download(dest: Path, url: str | None = None, expected: dict[str, str] | None = None,
             timeout: float = 60.0) -> None:
    """Download the tutorial zip, extract only ``data/names/*.txt`` and verify each file into ``dest``."""
    expected = EXPECTED_SHA256 if expected is None else expected
    url = url or os.environ.get("HW6_DATA_URL") or DATA_URL
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
    except Exception as exc:  # network errors come in many types; report them all the same way
        raise SurnameDataError(f"could not download the surname data from {url}: {exc}. {how_to_fix(dest)}") from None
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile:
        raise SurnameDataError(f"{url} is not a zip file. {how_to_fix(dest)}") from None
    contents: dict[str, bytes] = {}
    for member in archive.namelist():
        name = member[len(ZIP_PREFIX):]
        # only plain files directly inside data/names/ (no sub-folders, no path tricks)
        if member.startswith(ZIP_PREFIX) and name.endswith(".txt") and "/" not in name and name in expected:
            contents[name] = archive.read(member)
    _write_verified(Path(dest), contents, expected, f"{url}")


def ensure_data(path: str | os.PathLike | None = None, *, fetch: bool = True, force: bool = False,
                mirror: str | os.PathLike | None = None, url: str | None = None,
                expected: dict[str, str] | None = None, progress: bool = True) -> Path:
    """Return a folder holding the verified files, filling it from the mirror or the zip if it is empty.

    ``force`` deletes the expected files in the folder and fetches them again.
    """
    expected = EXPECTED_SHA256 if expected is None else expected
    dest = resolve_data_dir(path)
    present = [name for name in expected if (dest / name).exists()]
    if force:
        for name in present:
            (dest / name).unlink()
        present = []
    if not present:
        if not fetch:
            raise SurnameDataError(f"surname data folder {dest} has none of the {len(expected)} files. "
                                   f"{how_to_fix(dest)}")
        source = resolve_mirror(mirror)
        try:
            if source is not None:
                if progress:
                    print(f"copying the surname data from {source} to {dest}")
                copy_from_mirror(source, dest, expected)
            else:
                if progress:
                    print(f"downloading the surname data from {url or os.environ.get('HW6_DATA_URL') or DATA_URL} "
                          f"to {dest}")
                download(dest, url=url, expected=expected)
        except OSError as exc:  # e.g. a read-only or missing parent folder
            raise SurnameDataError(f"cannot write the surname data to {dest}: {exc.strerror or exc}. "
                                   f"{how_to_fix(dest)}") from None
    verify_dir(dest, expected)
    return dest


def read_names(folder: Path, expected: dict[str, str] | None = None) -> dict[str, list[str]]:
    """{language: [raw name, ...]} from verified files, languages SORTED (labels never depend on the disk)."""
    expected = EXPECTED_SHA256 if expected is None else expected
    out: dict[str, list[str]] = {}
    for name in sorted(expected):
        text = (Path(folder) / name).read_text(encoding="utf-8")
        out[name[:-len(".txt")]] = text.rstrip("\n").split("\n")
    return out


def load_names(path: str | os.PathLike | None = None, *, fetch: bool = True, progress: bool = True
               ) -> tuple[dict[str, list[str]], str]:
    """Verified data as ({language: [names]}, combined sha256); fetches it first if needed."""
    folder = ensure_data(path, fetch=fetch, progress=progress)
    digests = verify_dir(folder)
    combined = combined_sha256(digests)
    if combined != EXPECTED_COMBINED_SHA256:  # cannot happen when every file matches; a guard for edits
        raise SurnameDataError(f"combined checksum of {folder} is {combined}, expected "
                               f"{EXPECTED_COMBINED_SHA256}. {how_to_fix(folder)}")
    return read_names(folder), combined

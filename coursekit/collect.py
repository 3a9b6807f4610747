"""Bring student work into submitted/<student>/<assignment>/ without losing anything.

Accepts, per student, a folder or a .zip named after the student id. An upload is checked whole
before anything of it is kept: absolute paths, ``..``, links, hard links and special files, names longer than
255 bytes, paths longer than ``max_path_bytes`` or deeper than ``max_depth``, more than ``max_files``
files or more than ``max_bytes`` uncompressed refuse it, with one reason line. A zip is judged from
its headers before extracting, and the bytes actually extracted are counted too (headers can lie).
The upload is unpacked into a staging folder beside the target and only then swapped in, so a
refused student keeps the previous submission; an accepted one replaces it, which is kept as
``<assignment>.previous-N``. Whatever goes wrong with one student, the others are collected.
Collected folders are owner-only (0700, files 0600). Folders are read by file descriptor and never
through a link (``coursekit/exchange.py`` collects nbgrader's exchange the same way).
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from coursekit.course import Course

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MiB = 1024 * 1024
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # of timestamp.txt, as nbgrader writes it


@dataclass(frozen=True)
class IntakeLimits:
    """What one student's upload may hold (the defaults fit a homework of notebooks and small files)."""
    max_bytes: int = 100 * MiB  # uncompressed, all files together
    max_files: int = 1000
    max_depth: int = 16  # folders below the submission folder, plus the file
    max_path_bytes: int = 1024  # of a path inside the submission (UTF-8)
    max_name_bytes: int = 255  # of one file or folder name (the usual file-system limit)


class Refused(Exception):
    """The upload breaks a rule; the message is the reason shown to the instructor."""


def _keep_previous(folder: Path) -> Path | None:
    if not folder.exists():
        return None
    n = 1
    while (backup := folder.with_name(f"{folder.name}.previous-{n}")).exists():
        n += 1
    folder.rename(backup)
    return backup


def _check_name(name: str, limits: IntakeLimits) -> tuple[str, ...]:
    """The parts of a relative member path, or Refused saying why it cannot be kept."""
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise Refused(f"absolute path {name[:80]!r}")
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise Refused(f"path leaving the submission folder {name[:80]!r}")
    if "\x00" in name:
        raise Refused(f"path with a NUL byte {name[:80]!r}")
    if len(name.encode("utf-8", "surrogateescape")) > limits.max_path_bytes:
        raise Refused(f"path longer than {limits.max_path_bytes} bytes ({name[:60]!r}...)")
    if any(len(part.encode("utf-8", "surrogateescape")) > limits.max_name_bytes for part in path.parts):
        raise Refused(f"a name longer than {limits.max_name_bytes} bytes ({name[:60]!r}...)")
    if len(path.parts) > limits.max_depth:
        raise Refused(f"path deeper than {limits.max_depth} levels ({name[:60]!r}...)")
    return path.parts


def _copy_counted(src: BinaryIO, dest: Path, budget: list[int], declared: int | None = None) -> None:
    """Copy ``src`` to ``dest`` while counting bytes against ``budget[0]`` (what is left of the cap)."""
    written = 0
    with dest.open("wb") as out:
        while chunk := src.read(1 << 16):
            written += len(chunk)
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise Refused("more data than its headers declare, over the size cap" if declared is not None
                              else "over the size cap while copying")
            if declared is not None and written > declared:
                raise Refused(f"member {dest.name!r} holds more data than its header declares")
            out.write(chunk)


def _extract_zip(archive: Path, target: Path, limits: IntakeLimits) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        files = []
        for info in members:
            kind = (info.external_attr >> 16) & 0o170000
            if kind == stat.S_IFLNK:
                raise Refused(f"link {info.filename[:80]!r}")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise Refused(f"special file {info.filename[:80]!r}")
            parts = _check_name(info.filename, limits)
            if len(parts) > 1 and parts[0] == archive.stem:  # the zip of a folder named after the student
                parts = parts[1:]
            if not info.is_dir() and parts:
                files.append((info, parts))
        if len(files) > limits.max_files:
            raise Refused(f"{len(files)} files, more than {limits.max_files}")
        declared = sum(info.file_size for info, _ in files)
        if declared > limits.max_bytes:
            raise Refused(f"{declared / MiB:.1f} MiB uncompressed, more than {limits.max_bytes / MiB:.0f} MiB")
        budget = [limits.max_bytes]
        for info, parts in files:
            dest = target.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src:
                _copy_counted(src, dest, budget, declared=info.file_size)


def _raise(err: OSError) -> None:
    raise err


def _copy_folder(folder: Path, target: Path, limits: IntakeLimits) -> None:
    """Copy a folder by file descriptor, never following a link: links, hard links and special files
    refuse it (checked on every name before copying, and on the opened file again while copying, so a
    file swapped for a link or a FIFO in between is refused too and never blocks)."""
    if os.path.islink(folder):
        raise Refused("the folder is a link")
    entries, total = [], 0
    for top, dirs, files, topfd in os.fwalk(folder, onerror=_raise, follow_symlinks=False):
        for name in [*dirs, *files]:
            relative = os.path.relpath(os.path.join(top, name), folder).replace(os.sep, "/")
            _check_name(relative, limits)
            info = os.stat(name, dir_fd=topfd, follow_symlinks=False)
            _check_kind(relative, info)
            if stat.S_ISREG(info.st_mode):
                entries.append(relative)
                total += info.st_size
                if len(entries) > limits.max_files:
                    raise Refused(f"more than {limits.max_files} files")
    if total > limits.max_bytes:
        raise Refused(f"{total / MiB:.1f} MiB, more than {limits.max_bytes / MiB:.0f} MiB")
    budget = [limits.max_bytes]
    for top, dirs, files, topfd in os.fwalk(folder, onerror=_raise, follow_symlinks=False):
        here = target / os.path.relpath(top, folder)
        here.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in files:
            relative = os.path.relpath(os.path.join(top, name), folder).replace(os.sep, "/")
            if relative not in entries:  # appeared after the check
                raise Refused(f"{relative[:80]!r} appeared while it was copied")
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=topfd)
            except OSError as err:  # ELOOP: swapped for a link
                raise Refused(f"{relative[:80]!r} cannot be opened without following a link ({err.strerror})") from None
            with os.fdopen(fd, "rb") as src:
                _check_kind(relative, os.fstat(fd))
                _copy_counted(src, here / name, budget)


def _check_kind(relative: str, info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise Refused(f"link {relative[:80]!r}")
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        raise Refused(f"hard link {relative[:80]!r}")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise Refused(f"special file {relative[:80]!r}")


def lock_down(folder: Path) -> None:
    """Owner-only modes (folders 0700, files 0600) on a tree the kit wrote: no other account reads or
    changes a collected submission, whatever modes it arrived with (the exchange's inbound is 0777)."""
    for top, dirs, files, topfd in os.fwalk(folder, onerror=_raise, follow_symlinks=False):
        for name in files:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=topfd)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
        os.fchmod(topfd, 0o700)


def _collect_one(course: Course, assignment: str, path: Path, student: str, limits: IntakeLimits,
                 stamp: str | None = None) -> str:
    """Check and copy one upload into submitted/<student>/<assignment> (``stamp``: its timestamp.txt,
    default now), owner-only."""
    target = course.folder("submitted", student, assignment)
    new_student = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    for folder in (target.parent.parent, target.parent):
        os.chmod(folder, 0o700)
    staging = Path(tempfile.mkdtemp(prefix=f".{assignment}.incoming-", dir=target.parent))
    backup = None
    try:
        if path.suffix == ".zip" and path.is_file():
            try:
                _extract_zip(path, staging, limits)
            except (zipfile.BadZipFile, zipfile.LargeZipFile) as err:
                raise Refused(f"not a valid zip file ({err})") from None
            except (RuntimeError, NotImplementedError) as err:  # encrypted, unknown compression
                raise Refused(f"a member cannot be extracted ({err})") from None
        elif path.is_dir() and not path.is_symlink():
            _copy_folder(path, staging, limits)
        else:
            raise Refused("expected a folder or a .zip")
        stamp = stamp or datetime.now(timezone.utc).strftime(TIMESTAMP_FORMAT)
        (staging / "timestamp.txt").write_text(stamp)
        lock_down(staging)
        backup = _keep_previous(target)
        try:
            staging.rename(target)
        except OSError:
            if backup:
                backup.rename(target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if new_student and not any(target.parent.iterdir()):
            target.parent.rmdir()
    kept = f" (previous submission kept as {backup.name})" if backup else ""
    return f"{student}: collected into {target}{kept}"


def collect(course: Course, assignment: str, paths: list[Path], *, max_bytes: int = IntakeLimits.max_bytes,
            max_files: int = IntakeLimits.max_files, max_depth: int = IntakeLimits.max_depth,
            max_path_bytes: int = IntakeLimits.max_path_bytes) -> list[str]:
    """Copy each student folder or zip into submitted/; return one line per student."""
    limits = IntakeLimits(max_bytes=max_bytes, max_files=max_files, max_depth=max_depth,
                          max_path_bytes=max_path_bytes)
    lines = []
    for path in paths:
        path = Path(path)
        student = path.stem if path.suffix == ".zip" else path.name
        if not STUDENT_ID.match(student):
            lines.append(f"{path}: {student!r} is not a usable student id (letters, digits, _ . -), skipped")
            continue
        if not path.exists():
            lines.append(f"{path}: does not exist, skipped")
            continue
        try:
            lines.append(_collect_one(course, assignment, path, student, limits))
        except Refused as why:
            lines.append(f"{path}: refused ({why}); previous submission, if any, unchanged")
        except Exception as err:  # noqa: BLE001 - one broken upload never stops the others
            lines.append(f"{path}: failed ({err.__class__.__name__}: {str(err)[:160]}); "
                         "previous submission, if any, unchanged")
    return lines

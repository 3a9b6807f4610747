"""nbgrader's exchange as a door the kit guards: collecting from ``inbound/``, and who may read the course.

Students hand in with nbgrader's own ``fetch_assignment`` / ``submit`` into the exchange
(``c.Exchange.root`` in nbgrader_config.py, the one setting: outside the course folder). Stock
``nbgrader collect`` copies what links point at, stops everyone at one FIFO and keeps the inbound
modes (0777); ``coursekit collect --exchange`` does instead, per student:

* pick the newest ``<student>+<assignment>+<timestamp>[+<random>]`` folder in ``inbound/`` (a name that
  cannot be read is refused alone, never stops the others);
* refuse it unless the account named ``<student>`` owns it (nbgrader only warns);
* copy it with ``coursekit.collect``'s checks (links, hard links, special files, sizes, counts, depth:
  refused with a reason; read by file descriptor, never through a link), owner-only (0700/0600);
* record as its time the later of the name's timestamp and the newest change time of its files (the
  kernel sets change times: a student cannot backdate a late submission by renaming it).

``KitCollect`` puts this behind nbgrader's own door too (``c.ExchangeFactory.collect`` in
nbgrader_config.py): ``nbgrader collect`` and the formgrader's *Collect* button run it.

``secure_course`` makes what students must never read owner-only: ``source/``, ``submitted/``,
``autograded/``, ``feedback/``, ``.coursekit/`` (0700) and the SQLite gradebook (0600), and gives the
exchange root the sticky bit (nbgrader's release makes it 0777, which lets any account rename the
course's exchange folder and put its own in place).
"""
from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from nbgrader.exchange.abc import ExchangeCollect

from coursekit.collect import STUDENT_ID, TIMESTAMP_FORMAT, IntakeLimits, Refused, _collect_one
from coursekit.course import Course, CourseError

PRIVATE_FOLDERS = ("source", "submitted", "autograded", "feedback", ".coursekit")


@dataclass(frozen=True)
class Inbound:
    """One submission folder in the exchange's inbound/."""

    path: Path
    student: str
    timestamp: datetime  # naive UTC, as nbgrader parses it
    stamp: str  # as written in the name (feedback is matched to it)


def exchange_root(course: Course) -> Path:
    """The exchange folder (``c.Exchange.root``; nbgrader's default when unset)."""
    return Path(course.config.Exchange.get("root", "/srv/nbgrader/exchange"))


def inbound_folder(course: Course) -> Path:
    return exchange_root(course) / course.course_id / "inbound"


def _parse(path: Path, assignment: str) -> Inbound:
    from nbgrader.utils import parse_utc

    parts = path.name.split("+")
    if len(parts) not in (3, 4) or parts[1] != assignment or not STUDENT_ID.match(parts[0]):
        raise Refused("not a name nbgrader's submit writes (<student>+<assignment>+<timestamp>[+<random>])")
    try:
        timestamp = parse_utc(parts[2])
    except (ValueError, OverflowError):
        raise Refused(f"unreadable timestamp {parts[2][:40]!r}") from None
    return Inbound(path, parts[0], timestamp, parts[2])


def newest_submissions(course: Course, assignment: str) -> tuple[list[Inbound], list[str]]:
    """(each student's newest inbound submission, one line per inbound entry that cannot be used)."""
    inbound = inbound_folder(course)
    if not inbound.is_dir():
        raise CourseError(f"no exchange inbound folder at {inbound}: run `nbgrader release_assignment "
                          f"{assignment}` first (c.Exchange.root in nbgrader_config.py)")
    newest: dict[str, Inbound] = {}
    refused = []
    for path in sorted(inbound.iterdir()):
        if "+" not in path.name or path.name.split("+")[1:2] != [assignment]:
            continue
        try:
            found = _parse(path, assignment)
        except Refused as why:
            refused.append(f"{path}: refused ({why})")
            continue
        if found.student not in newest or found.timestamp > newest[found.student].timestamp:
            newest[found.student] = found
    return [newest[s] for s in sorted(newest)], refused


def _owner_problem(found: Inbound) -> str | None:
    info = os.stat(found.path, follow_symlinks=False)
    if not stat.S_ISDIR(info.st_mode):
        return "not a folder (a link or a file)"
    try:
        expected = pwd.getpwnam(found.student).pw_uid
    except KeyError:
        return f"no account named {found.student!r} on this machine"
    if info.st_uid != expected:
        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = str(info.st_uid)
        return f"owned by {owner!r}, not by {found.student!r}"
    return None


def _newest_change(folder: Path) -> float:
    newest = os.stat(folder, follow_symlinks=False).st_ctime
    for _top, dirs, files, topfd in os.fwalk(folder, follow_symlinks=False):
        for name in [*dirs, *files]:
            newest = max(newest, os.stat(name, dir_fd=topfd, follow_symlinks=False).st_ctime)
    return newest


def _existing_stamp(course: Course, student: str, assignment: str) -> str | None:
    stamp = course.folder("submitted", student, assignment) / "timestamp.txt"
    return stamp.read_text().strip() if stamp.is_file() and not stamp.is_symlink() else None


def collect_exchange(course: Course, assignment: str, limits: IntakeLimits = IntakeLimits(),
                     students: list[str] | None = None) -> list[str]:
    """Collect every student's newest inbound submission into submitted/; one line per student."""
    changed = secure_course(course)
    found, lines = newest_submissions(course, assignment)
    lines = [*changed, *(f"warning: {problem}" for problem in mode_problems(course)), *lines]
    for item in found:
        if students and item.student not in students:
            continue
        try:
            problem = _owner_problem(item)
            if problem:
                raise Refused(problem)
            changed_at = datetime.fromtimestamp(_newest_change(item.path), timezone.utc)
            late = changed_at.replace(tzinfo=None) - item.timestamp > _SLACK
            stamp = changed_at.strftime(TIMESTAMP_FORMAT) if late else item.stamp
            if _existing_stamp(course, item.student, assignment) == stamp:
                lines.append(f"{item.student}: already collected ({stamp})")
                continue
            line = _collect_one(course, assignment, item.path, item.student, limits, stamp=stamp)
            if late:
                line += f"; dated {stamp} (its files changed after the time in its name)"
            lines.append(line)
        except Refused as why:
            lines.append(f"{item.path}: refused ({why}); previous submission, if any, unchanged")
        except Exception as err:  # noqa: BLE001 - one broken submission never stops the others
            lines.append(f"{item.path}: failed ({err.__class__.__name__}: {str(err)[:160]}); "
                         "previous submission, if any, unchanged")
    return lines


_SLACK = timedelta(seconds=60)  # clock skew between the student's machine and this one


class KitCollect(ExchangeCollect):
    """nbgrader's collect plugin, done by ``collect_exchange`` (``nbgrader collect``, the formgrader)."""

    def init_src(self) -> None:
        pass

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        student = self.coursedir.student_id
        try:
            lines = collect_exchange(Course.open(self.coursedir.root), self.coursedir.assignment_id,
                                     students=None if student in ("", "*") else [student])
        except CourseError as err:
            self.fail(str(err))  # nbgrader's way to stop with one clear line
        for line in lines:
            problem = "refused (" in line or "failed (" in line or line.startswith("warning")
            (self.log.warning if problem else self.log.info)("collect: %s", line)


# --- who may read the course --------------------------------------------------------------------------

def _gradebook(course: Course) -> Path | None:
    return Path(course.db_url.removeprefix("sqlite:///")) if course.db_url.startswith("sqlite:///") else None


def mode_problems(course: Course) -> list[str]:
    """What another account on this machine could read or change in the course (empty: nothing)."""
    problems = []
    for name in PRIVATE_FOLDERS:
        folder = course.root / name
        if folder.exists() and os.stat(folder, follow_symlinks=False).st_mode & 0o077:
            problems.append(f"{folder}: mode {os.stat(folder).st_mode & 0o777:o}, other accounts can enter it")
    database = _gradebook(course)
    if database and database.exists() and database.stat().st_mode & 0o077:
        problems.append(f"{database}: mode {database.stat().st_mode & 0o777:o}, other accounts can read it")
    exchange = exchange_root(course).resolve()
    if exchange.is_dir():  # nbgrader's release_assignment makes it 777; without the sticky bit any account
        info = exchange.stat()  # could rename the course's folder in it and put its own in place
        if info.st_mode & 0o002 and not info.st_mode & stat.S_ISVTX:
            problems.append(f"{exchange}: mode {info.st_mode & 0o777:o} without the sticky bit: any account can "
                            "rename the course's exchange folder (chmod 1777)")
        if info.st_uid not in (0, os.geteuid()):
            problems.append(f"{exchange}: owned by uid {info.st_uid}, not by the instructor")
    course_exchange = exchange / course.course_id
    if course_exchange.is_dir():
        info = course_exchange.stat()
        if info.st_mode & 0o022 or info.st_uid != os.geteuid():
            problems.append(f"{course_exchange}: mode {info.st_mode & 0o777:o}, owner uid {info.st_uid}: only "
                            "the instructor may write it")
    if exchange == course.root.resolve() or course.root.resolve() in exchange.parents:
        problems.append(f"the exchange ({exchange}) is inside the course folder: every student account "
                        "needs to enter it; set c.Exchange.root in nbgrader_config.py to a folder outside it")
    return problems


def secure_course(course: Course) -> list[str]:
    """Make the private folders owner-only (0700) and the gradebook 0600; one line per change."""
    lines = []
    for name in PRIVATE_FOLDERS:
        folder = course.root / name
        if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mode & 0o077:
            lines.append(f"{folder}: mode {folder.stat().st_mode & 0o777:o} -> 700")
            os.chmod(folder, 0o700)
    database = _gradebook(course)
    if database and database.is_file() and database.stat().st_mode & 0o077:
        lines.append(f"{database}: mode {database.stat().st_mode & 0o777:o} -> 600")
        os.chmod(database, 0o600)
    exchange = exchange_root(course)
    if exchange.is_dir() and not exchange.is_symlink():
        info = exchange.stat()
        if info.st_uid == os.geteuid() and info.st_mode & 0o002 and not info.st_mode & stat.S_ISVTX:
            lines.append(f"{exchange}: mode {info.st_mode & 0o777:o} -> 1777 (sticky: nobody renames "
                         "another's folder; nbgrader accepts it)")
            os.chmod(exchange, (info.st_mode & 0o7777) | stat.S_ISVTX)
    return lines

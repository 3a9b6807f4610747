"""The course folder: where nbgrader_config.py lives, and nbgrader's API bound to it."""
from __future__ import annotations

import os
import sys
import tomllib
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from coursekit.gradebook_engines import reuse_engines

CONFIG_FILE = "nbgrader_config.py"


class CourseError(Exception):
    """A problem the instructor can fix (missing folder, unknown assignment, ...)."""


def use_this_python_for_tools() -> None:
    """Put this interpreter's bin/ first on PATH: nbgrader runs `alembic` and kernels start `python`
    by name, and both must come from the environment coursekit runs in."""
    bin_dir = os.path.dirname(sys.executable)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def find_course_dir(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) that holds nbgrader_config.py."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise CourseError(f"no {CONFIG_FILE} found in {here} or any folder above it; "
                      "run coursekit inside the course folder or pass --course-dir")


def kit_settings(root: Path) -> dict[str, str]:
    """The [tool.coursekit] table of pyproject.toml (assignment name, helper package, grading package)."""
    defaults = {"assignment": "hw6", "helper_package": "hw6utils", "grading_package": "hw6grading"}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        defaults.update(tomllib.loads(pyproject.read_text()).get("tool", {}).get("coursekit", {}))
    return defaults


def assignment_source(config: Config, assignment: str) -> Path:
    """source/<assignment> of the course a configuration describes."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    return Path(coursedir.format_path(coursedir.source_directory, ".", assignment))


def helper_dir(config: Config, assignment: str) -> Path:
    """The instructor's helper package of an assignment (trusted code), e.g. source/hw6/hw6utils."""
    from nbgrader.coursedir import CourseDirectory

    root = Path(CourseDirectory(config=config).root)
    return assignment_source(config, assignment) / kit_settings(root)["helper_package"]


def grading_dir(config: Config, assignment: str) -> Path:
    """The instructor-only grading package of an assignment (judges, reference implementations; never
    released), e.g. source/hw6/hw6grading."""
    from nbgrader.coursedir import CourseDirectory

    root = Path(CourseDirectory(config=config).root)
    return assignment_source(config, assignment) / kit_settings(root)["grading_package"]


@dataclass
class Course:
    """A course folder and the nbgrader configuration loaded from it."""

    root: Path

    @classmethod
    def open(cls, course_dir: str | os.PathLike[str] | None = None) -> "Course":
        root = Path(course_dir).resolve() if course_dir else find_course_dir()
        if not (root / CONFIG_FILE).is_file():
            raise CourseError(f"{root} has no {CONFIG_FILE}")
        return cls(root=root)

    @cached_property
    def config(self) -> Config:
        config = PyFileConfigLoader(CONFIG_FILE, path=str(self.root)).load_config()
        config.CourseDirectory.root = str(self.root)
        return config

    @cached_property
    def settings(self) -> dict[str, str]:
        return kit_settings(self.root)

    @property
    def default_assignment(self) -> str:
        return self.settings["assignment"]

    @cached_property
    def api(self):  # -> nbgrader.apps.NbGraderAPI (imported lazily: it is slow to import)
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        use_this_python_for_tools()
        reuse_engines()  # nbgrader's gradebook: one engine per database, no `alembic` program per new one
        # nbgrader's gradebook triggers a harmless SQLAlchemy autoflush warning on every submission.
        warnings.filterwarnings("ignore", message=".*not in session.*")
        coursedir = CourseDirectory(config=self.config)
        return NbGraderAPI(coursedir=coursedir, config=self.config)

    @property
    def db_url(self) -> str:
        return self.api.coursedir.db_url

    @property
    def course_id(self) -> str:
        return self.api.coursedir.course_id

    def folder(self, kind: str, *parts: str) -> Path:
        """A course sub-folder by nbgrader's name for it: source, release, submitted, autograded, feedback."""
        name = getattr(self.api.coursedir, f"{kind}_directory")
        return self.root.joinpath(name, *parts)

    def prepare_folders(self) -> None:
        """The folders nbgrader and the kit expect: nbgrader's exchange (so the formgrader's Release and
        Collect work), and owner-only places for what students must never read (the kit's state folder
        and the SQLite gradebook)."""
        exchange = Path(self.config.Exchange.get("root", "/srv/nbgrader/exchange"))
        exchange.mkdir(parents=True, exist_ok=True)
        state = self.root / ".coursekit"
        state.mkdir(exist_ok=True)
        os.chmod(state, 0o700)
        if self.db_url.startswith("sqlite:///"):
            database = Path(self.db_url.removeprefix("sqlite:///"))
            if database.exists():
                os.chmod(database, 0o600)

    def generate_release(self, assignment: str) -> None:
        """Regenerate release/<assignment> with nbgrader and record the assignment in the gradebook."""
        self.source_notebooks(assignment)  # fails clearly if source/<assignment> is missing
        outcome = self.api.generate_assignment(assignment, force=True, create=True)
        if not outcome["success"]:
            log = (outcome.get("log") or "") + "\n" + (outcome.get("error") or "")
            causes = [line.strip() for line in log.splitlines()
                      if line.strip() and not line.startswith(("[INFO]", "[WARNING]", " ")) or "Error:" in line]
            raise CourseError(f"nbgrader could not generate {assignment}: " + " | ".join(causes[-3:]))
        self.prepare_folders()

    def source_notebooks(self, assignment: str) -> list[str]:
        """Names (without .ipynb) of the assignment's notebooks in source/, sorted."""
        folder = self.folder("source", assignment)
        if not folder.is_dir():
            raise CourseError(f"assignment {assignment!r} not found: {folder} does not exist")
        return sorted(p.stem for p in folder.glob("*.ipynb"))

    def students_with_submissions(self, assignment: str) -> list[str]:
        submitted = self.folder("submitted")
        if not submitted.is_dir():
            return []
        return sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())

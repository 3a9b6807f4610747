"""`coursekit fetch-data`: fetch and verify the Problem 4 surname data into the course's data/names/.

The logic lives in the student helper ``source/hw6/hw6utils/surname_data.py`` (it travels with the
assignment); this command loads that file by path instead of keeping a second copy.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

HELPER_DIR = Path("source") / "hw6" / "hw6utils"


def find_course_dir(course_dir: str | os.PathLike | None = None) -> Path:
    """The course folder: the given one, else the nearest folder upwards holding nbgrader_config.py,
    else the checkout this package lives in."""
    if course_dir:
        return Path(course_dir).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / HELPER_DIR).is_dir():
            return folder
    return Path(__file__).resolve().parents[1]


def load_helper(name: str, course_dir: str | os.PathLike | None = None) -> ModuleType:
    """Import ``source/hw6/hw6utils/<name>.py`` of the course by path (the trusted instructor copy)."""
    path = find_course_dir(course_dir) / HELPER_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"helper module {path} not found (is --course-dir right?)")
    module_name = f"_coursekit_hw6utils_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    spec.loader.exec_module(module)
    return module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", default=None,
                        help="folder for the 18 files (default: HW6_DATA_DIR, else <course>/data/names)")
    parser.add_argument("--mirror", default=None,
                        help="copy from this local folder instead of downloading (default: HW6_DATA_MIRROR)")
    parser.add_argument("--force", action="store_true", help="delete the files in --dest and fetch them again")
    parser.add_argument("--url", default=None, help="zip to download (default: the PyTorch tutorial's data.zip)")


def run(args: argparse.Namespace) -> int:
    course = find_course_dir(getattr(args, "course_dir", None))
    data = load_helper("surname_data", course)
    dest = args.dest or os.environ.get("HW6_DATA_DIR") or course / "data" / "names"
    try:
        folder = data.ensure_data(dest, force=args.force, mirror=args.mirror, url=args.url)
        digests = data.verify_dir(folder)
    except data.SurnameDataError as exc:
        print(f"fetch-data: {exc}", file=sys.stderr)
        return 1
    print(f"{len(digests)} files verified in {folder} (combined sha256 {data.combined_sha256(digests)})")
    return 0

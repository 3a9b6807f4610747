"""The autograder image's lock file: every package grading imports, pinned with its sha256, pip included.

``python -m coursekit.gradescope.lock`` (run in the kit's venv) resolves ``grading-requirements.in`` (the
kit's own exact pins from pyproject.toml, only the packages grading imports) with pip against PyPI and
the PyTorch CPU index, at the versions installed in the venv it runs in (where the tests passed),
drops what only the instructor's tools need (JupyterLab, Notebook, Dask: ``EXCLUDED`` and whatever is
reachable only through them), and writes ``grading-requirements.lock``. ``setup.sh`` installs exactly
that file with ``pip install --require-hashes --no-deps --only-binary=:all:``, so the image holds the
same files on every build, or the build fails.

The lock is for Gradescope's image: CPython 3.11 on x86_64 Linux (the wheels pip picks here, run on
that platform). Regenerate it after changing a pin in pyproject.toml (a test fails when they disagree).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
REQUIREMENTS_IN = HERE / "grading-requirements.in"
LOCK = HERE / "grading-requirements.lock"
PYPROJECT = HERE.parents[1] / "pyproject.toml"
PYPI = "https://pypi.org/simple"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# nbgrader declares these, but grading never imports them: they stay out of the image
EXCLUDED = ("jupyterlab", "notebook", "jupyterlab-server", "notebook-shim", "jupyter-lsp", "async-lru",
            "dask", "distributed", "copydetect", "cryptography")
# wheels that run on Ubuntu 22.04 (glibc 2.35) and Debian 12 (glibc 2.36)
PLATFORMS = ("manylinux_2_35_x86_64", "manylinux_2_34_x86_64", "manylinux_2_31_x86_64", "manylinux_2_28_x86_64",
             "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux2010_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64")
TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def kit_pins() -> dict[str, str]:
    """canonical name -> the pyproject.toml requirement (all exact)."""
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {canonical(Requirement(d).name): d.split("#")[0].strip() for d in deps}


def roots() -> list[str]:
    """The requirement lines of grading-requirements.in (comments and blanks dropped)."""
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS_IN.read_text().splitlines()]
    return [line for line in lines if line]


def this_environment() -> list[str]:
    """``name==version`` of every package installed here (the kit's venv, where the tests ran), except those
    that need a newer Python than the oldest the image may have (Ubuntu 22.04's python3.11 is 3.11.0)."""
    from importlib.metadata import distributions

    from packaging.specifiers import SpecifierSet

    oldest = TARGET["python_full_version"]
    pins = {canonical(d.metadata["Name"]): d.version for d in distributions()
            if d.metadata["Name"] and oldest in SpecifierSet(d.metadata.get("Requires-Python") or "")}
    pins.pop("coursekit", None)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def resolve(requirements: list[str], find_links: str | None, constraints: list[str]) -> list[dict]:
    """pip's installation report for ``requirements`` in an empty environment (nothing installed)."""
    with tempfile.TemporaryDirectory() as tmp:
        req_file, report = Path(tmp) / "req.txt", Path(tmp) / "report.json"
        req_file.write_text("\n".join(requirements) + "\n")
        (Path(tmp) / "constraints.txt").write_text("\n".join(constraints) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull  # this machine's pip.conf (local mirrors, constraints) is not the lock's
        if os.environ.get("PIP_CERT"):
            env["PIP_CERT"] = os.environ["PIP_CERT"]
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                   *(f"--platform={tag}" for tag in PLATFORMS), "--target", str(Path(tmp) / "t"),
                   "--index-url", PYPI, "--report", str(report), "-r", str(req_file),
                   "--constraint", str(Path(tmp) / "constraints.txt")]
        command += ["--find-links", find_links] if find_links else ["--extra-index-url", TORCH_INDEX]
        subprocess.run(command, check=True, env=env)
        return json.loads(report.read_text())["install"]


def requires(item: dict, extras: set[str]) -> list[Requirement]:
    out = []
    for text in item["metadata"].get("requires_dist") or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({**TARGET, "extra": e}) for e in (extras or {""})):
            out.append(req)
    return out


def keep(items: list[dict], wanted: list[str]) -> list[dict]:
    """The packages reachable from ``wanted`` without passing through an excluded one."""
    by_name = {canonical(i["metadata"]["name"]): i for i in items}
    extras: dict[str, set[str]] = {}
    stack = [Requirement(r) for r in wanted]
    seen: set[tuple[str, frozenset[str]]] = set()
    while stack:
        req = stack.pop()
        name = canonical(req.name)
        if name in EXCLUDED or name not in by_name:
            continue
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        extras.setdefault(name, set()).update(req.extras)
        stack.extend(requires(by_name[name], set(req.extras)))
    return [by_name[n] for n in sorted(extras)]


def lock_text(items: list[dict]) -> str:
    lines = ["# The Gradescope image's packages: generated by `python -m coursekit.gradescope.lock` from",
             "# grading-requirements.in; do not edit. setup.sh installs exactly these files:",
             "#   pip install --require-hashes --no-deps --only-binary=:all: -r grading-requirements.lock",
             "# (PyPI, plus the PyTorch CPU index for torch). CPython 3.11, x86_64 Linux."]
    for item in items:
        info = item["download_info"]
        sha = info["archive_info"]["hashes"]["sha256"] if "hashes" in info.get("archive_info", {}) else \
            info["archive_info"]["hash"].split("=", 1)[1]
        lines.append(f"{canonical(item['metadata']['name'])}=={item['metadata']['version']} \\")
        lines.append(f"    --hash=sha256:{sha}")
    return "\n".join(lines) + "\n"


def locked() -> dict[str, str]:
    """canonical name -> version, as written in the lock."""
    found = re.findall(r"^([a-z0-9-]+)==(\S+) \\$", LOCK.read_text(), flags=re.M)
    return dict(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--find-links", default=None,
                        help="a folder holding the torch CPU wheel, instead of the PyTorch CPU index")
    parser.add_argument("--any-version", action="store_true",
                        help="resolve the newest versions instead of those installed in this environment")
    args = parser.parse_args(argv)
    wanted = roots()
    items = resolve(wanted, args.find_links, [] if args.any_version else this_environment())
    kept = keep(items, wanted)
    LOCK.write_text(lock_text(kept))
    dropped = sorted(canonical(i["metadata"]["name"]) for i in items if i not in kept)
    print(f"wrote {LOCK}: {len(kept)} packages; left out {len(dropped)}: {', '.join(dropped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (the zip is unpacked in
# /autograder/source). Base image: Ubuntu 22.04 (Gradescope's default) or Debian 12.
#
# What it downloads, from where:
#   - apt (the base image's own archive, no PPA): python3.11, python3.11-venv, ca-certificates, util-linux
#     (Ubuntu 22.04: python3.11 from universe; Debian 12: main);
#   - pip, from PyPI (https://pypi.org/simple) and the PyTorch CPU index (@TORCH_INDEX@, torch only):
#     exactly the files of requirements.lock, each checked against its sha256 (--require-hashes), pip
#     itself included; no package outside the lock is installed (--no-deps) and nothing is built from
#     source (--only-binary=:all:).
# Then it removes apt's caches and lists, and proves the image can grade (the sandbox's own probe, the
# kit and its imports). `bash setup.sh --dry-run` prints the commands instead of running them.
#
# Environment (for mirrors and offline test machines; Gradescope sets none of them):
#   COURSEKIT_PIP_INDEX   instead of PyPI          COURSEKIT_TORCH_INDEX   instead of the PyTorch CPU index
#   COURSEKIT_FIND_LINKS  a folder of wheels pip may also take files from (hashes are still checked)
set -euo pipefail

DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; fi
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV=/opt/coursekit/venv
PIP_INDEX="${COURSEKIT_PIP_INDEX:-https://pypi.org/simple}"
TORCH_INDEX="${COURSEKIT_TORCH_INDEX:-@TORCH_INDEX@}"
FIND_LINKS=()
if [ -n "${COURSEKIT_FIND_LINKS:-}" ]; then FIND_LINKS=(--find-links "$COURSEKIT_FIND_LINKS"); fi

run() {
  if [ "$DRY_RUN" = 1 ]; then printf '%s\n' "$*"; else "$@"; fi
}

export DEBIAN_FRONTEND=noninteractive
run apt-get update
run apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates util-linux
run apt-get clean
run rm -rf /var/lib/apt/lists/*
run python3.11 -m venv "$VENV"
# one pip run installs the whole lock (pip first upgrades itself to the locked, hash-checked version)
run "$VENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --require-hashes --no-deps \
  --only-binary=:all: --index-url "$PIP_INDEX" --extra-index-url "$TORCH_INDEX" "${FIND_LINKS[@]}" \
  -r "$SOURCE/requirements.lock"
# bytecode once, here: run_autograder runs with PYTHONDONTWRITEBYTECODE (a run never changes the image), so
# without it every submission would compile all it imports again (torch, nbgrader, ...). A few files are
# written for newer Pythons (e.g. a torch test helper for 3.12) and do not compile; nothing imports them.
run "$VENV/bin/python" -m compileall -qq -j 0 "$VENV/lib" || true
run chmod -R go+rX "$VENV"
# the final check: the kit (in $SOURCE/kit, as run_autograder puts it) imports with everything grading
# needs, and this image can run student code (the sandbox's probe: an unprivileged uid and its limits)
run env PYTHONPATH="$SOURCE/kit" PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m coursekit.gradescope.run --check-image

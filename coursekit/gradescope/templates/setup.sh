#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (the zip is unpacked in
# /autograder/source). It installs exactly the kit's pinned environment: Python 3.11 (deadsnakes), then
# torch CPU first from the PyTorch CPU wheel index, then the kit's other exact pins.
# `bash setup.sh --dry-run` prints the commands instead of running them.
set -euo pipefail

DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; fi
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV=/opt/coursekit/venv
TORCH="@TORCH_REQUIREMENT@"
TORCH_INDEX="@TORCH_INDEX@"

run() {
  if [ "$DRY_RUN" = 1 ]; then printf '%s\n' "$*"; else "$@"; fi
}

export DEBIAN_FRONTEND=noninteractive
run apt-get update
run apt-get install -y --no-install-recommends software-properties-common gpg-agent util-linux ca-certificates
run add-apt-repository -y ppa:deadsnakes/ppa
run apt-get update
run apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev
run python3.11 -m venv "$VENV"
run "$VENV/bin/python" -m pip install --no-cache-dir --upgrade pip
# torch first and pinned, CPU build: an unpinned torch (or one pulled in by a dependency) is a CUDA build
run "$VENV/bin/python" -m pip install --no-cache-dir --index-url "$TORCH_INDEX" "$TORCH"
run "$VENV/bin/python" -m pip install --no-cache-dir -r "$SOURCE/requirements.txt"
run chmod -R go+rX "$VENV"
run "$VENV/bin/python" -c "import torch, nbgrader, coursekit; print('torch', torch.__version__)"

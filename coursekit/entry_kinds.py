"""The one rule for directory entries a submission may not use: links, hard links and special files.

Every door applies it (intake before nbgrader copies anything, Gradescope's container before staging an
upload); it lives apart from ``coursekit.intake`` so that a caller needing only the rule (a Gradescope
log-mode run) does not import nbgrader for it.
"""
from __future__ import annotations

import stat


def odd_kind(mode: int, links: int) -> str | None:
    """What kind of entry may not be used: a link, a hard link, a special file (None for the rest)."""
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISREG(mode):
        return "hard link" if links > 1 else None
    return None if stat.S_ISDIR(mode) else "special file"

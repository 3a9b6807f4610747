"""How `make test` spreads the suite over pytest-xdist's workers (``--dist loadgroup``): which tests must
share a worker, and which go first.

* Tests of one module that use a module-scoped fixture share a worker (an xdist group named after the
  module), so the fixture is built once: under ``loadgroup`` an ungrouped module's tests are dealt out one
  by one, and a worker tears a module's fixtures down whenever its next test is from another module.
* Units of work (an xdist group, or a single ungrouped test) are handed out longest first, by their
  seconds in ``durations.json`` beside this file (the long units only; others are guessed from their
  markers), so no long unit starts last while the other worker idles. pytest-xdist deals units in collection order when
  ``--no-loadscope-reorder`` is given (pyproject.toml's addopts); it otherwise sorts them by test count.
* A unit that needs what another, longer unit builds once for the session waits for it: it is moved back
  until that build is likely done, so its worker does other work meanwhile.

Refresh the durations after a big change to the suite, from a run's ``--durations=0`` report::

    python -m pytest -n 2 --durations=0 ... | tee run.log
    python -m tests.support.scheduling run.log
"""
from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
UNMEASURED = {"slow": 20.0, "browser": 20.0}  # seconds assumed for a test not in durations.json, by marker
UNMEASURED_DEFAULT = 0.5
LONG_UNIT = 5.0  # seconds: shorter units are not kept in durations.json (their order hardly matters)
SHARED_SCOPES = ("module", "class", "package")
# Session fixtures one test builds for all (tests/support/session_cache.py) while the others wait on its lock.
SESSION_BUILDS = ("graded_hw6_built",)
GROUP_SUFFIX = re.compile(r"@[^:\]\[/]+$")  # what pytest-xdist appends to a grouped test's node id
DURATION_LINE = re.compile(r"^\s*([0-9.]+)s (setup|call|teardown)\s+(\S.*?)\s*$")


def group_names(item: pytest.Item) -> list[str]:
    return sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                   for mark in item.iter_markers("xdist_group")})


def shares_a_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a fixture kept for more than one test of its module (module/class/package scope)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(definitions[-1].scope in SHARED_SCOPES for definitions in info.name2fixturedefs.values()
               if definitions)


def group_modules_with_shared_fixtures(items: list[pytest.Item]) -> None:
    """Put the ungrouped tests of a module that share a module-scoped fixture in one xdist group."""
    for item in items:
        if not group_names(item) and shares_a_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0].removesuffix(".py").replace("/", ".")))


def name_groups_in_node_ids(items: list[pytest.Item]) -> None:
    """Append ``@<group>`` to a grouped test's node id, which is how ``loadgroup`` sees groups.

    pytest-xdist 3.8 does this by setting ``item._nodeid``, which pytest 9 no longer reads (a node id is
    ``item._id``, a ``NodeId``): without this, every xdist_group is ignored and each test is dealt out on
    its own, so every worker builds every module- and session-scoped fixture it meets. Does nothing once
    pytest-xdist names the groups itself."""
    from _pytest.nodeid import NodeId

    for item in items:
        names = group_names(item)
        if names and not GROUP_SUFFIX.search(item.nodeid):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    """Seconds per unit of work: an xdist group's name, or an ungrouped test's node id."""
    return json.loads(path.read_text()) if path.is_file() else {}


def unit_key(item: pytest.Item) -> str:
    """The unit of work a test belongs to: its xdist group (as pytest-xdist names it), or the test itself."""
    return "_".join(group_names(item)) or item.nodeid


def guess(item: pytest.Item) -> float:
    """Seconds assumed for a test of a unit that was not measured, by its markers."""
    return max([UNMEASURED.get(mark.name, UNMEASURED_DEFAULT) for mark in item.iter_markers()] + [UNMEASURED_DEFAULT])


def longest_first(items: list[pytest.Item], durations: dict[str, float]) -> list[pytest.Item]:
    """The items, units of work ordered by their measured (or guessed) seconds, longest first; the tests
    of a group keep their order. A unit that needs a session build (``SESSION_BUILDS``) made by a longer
    unit is moved back until the other workers have had that long to spend (``after_the_build``)."""
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(unit_key(item), []).append(item)
    cost = {key: durations.get(key, sum(guess(item) for item in unit)) for key, unit in units.items()}
    order = sorted(units, key=lambda k: -cost[k])
    for build in SESSION_BUILDS:
        order = after_the_build(order, cost, [k for k in order if any(build in i.fixturenames for i in units[k])])
    return [item for key in order for item in units[key]]


def after_the_build(order: list[str], cost: dict[str, float], users: list[str]) -> list[str]:
    """``order`` with every user of one session build but the first (which builds it, for about its own
    cost) placed where the units ahead of it, the builder aside, add up to that cost: started earlier, it
    would wait on the build's lock with its worker idle; much later, it could be the run's last unit."""
    if len(users) < 2:
        return order
    builder, waiting = users[0], set(users[1:])
    rest = [key for key in order if key not in waiting]
    ahead, position = 0.0, len(rest)
    for index, key in enumerate(rest):
        if ahead >= cost[builder]:
            position = index
            break
        ahead += 0.0 if key == builder else cost[key]
    return rest[:position] + [key for key in order if key in waiting] + rest[position:]


def durations_from_report(text: str) -> dict[str, float]:
    """Seconds per unit of work (setup + call + teardown of its tests) from a ``--durations=0`` table of
    a run under ``-n 2 --dist loadgroup`` (a grouped test's node id ends in ``@<group>``)."""
    seconds: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        found = DURATION_LINE.match(line)
        if found:
            nodeid = found.group(3)
            group = GROUP_SUFFIX.search(nodeid)
            seconds[group.group(0)[1:] if group else nodeid] += float(found.group(1))
    return {key: round(value, 1) for key, value in sorted(seconds.items())}


if __name__ == "__main__":
    measured = durations_from_report(Path(sys.argv[1]).read_text())
    if not measured:
        sys.exit(f"{sys.argv[1]}: no --durations=0 table found")
    measured = {unit: seconds for unit, seconds in measured.items() if seconds >= LONG_UNIT}
    DURATIONS.write_text(json.dumps(measured, indent=0, sort_keys=True) + "\n")
    print(f"{DURATIONS}: {len(measured)} units of work, {sum(measured.values()):.0f} s in all")

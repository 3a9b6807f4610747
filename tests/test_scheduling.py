"""The suite's own scheduling (tests/support/scheduling.py): a unit that waits for a session build starts
once the other workers have had the build's time to spend, not before and not last."""
from tests.support.scheduling import after_the_build


def test_a_unit_that_needs_a_build_starts_after_about_the_builds_time():
    cost = {"build": 100.0, "a": 60.0, "b": 50.0, "c": 30.0, "d": 5.0, "needs": 40.0}
    order = ["build", "a", "b", "needs", "c", "d"]
    assert after_the_build(order, cost, ["build", "needs"]) == ["build", "a", "b", "needs", "c", "d"]
    cost["build"] = 130.0
    assert after_the_build(order, cost, ["build", "needs"]) == ["build", "a", "b", "c", "needs", "d"]
    cost["build"] = 1000.0  # never enough work ahead: last
    assert after_the_build(order, cost, ["build", "needs"]) == ["build", "a", "b", "c", "d", "needs"]
    assert after_the_build(order, cost, ["needs"]) == order  # one user builds it itself

"""Helpers that travel with the HW6 notebooks.

nbgrader copies this package into the student release and restores the instructor's copy
when it autogrades, so code here is trusted: students use it, they do not edit it.
Import what you need from the submodules, e.g. ``from hw6utils.checks import assert_close``.
"""

"""Helpers that travel with the HW6 notebooks.

nbgrader copies this package into the student release and restores the instructor's copy
when it autogrades, so code here is trusted: students use it, they do not edit it.
Import what you need from the submodules, e.g. ``from hw6utils.checks import assert_close``.

One concept per module:

* ``checks``: readable assertions and ``check`` for test cells (and the grader's comparisons).
* ``records``: the check record format, how results travel from the kernel to the grader.
* ``symbolic``: written expressions (Problem 1's derivations) read as data and judged by equivalence.
* ``figures``: the diagrams shown in the notebooks.
* ``beam``: the decoder of Figure 2 and random decoders for Problem 2 (drawn by ``figures``).
* ``gradients``: the Problem 3d measurement (hidden-state and gradient norms), no plotting.
* ``gradviz``: the Problem 3d plot and interactive widget around that measurement.
* ``standins``: trusted recurrent layers that stand in for the student's in the stacking tests.
* ``training``: the running-average task's data and the trusted training loop of Problem 3k.
* ``surname_data``: downloading and verifying the surname data set of Problem 4.
* ``surnames``: the Problem 4 pipeline (encoding, splits, training, evaluation, plots).
* ``surname_log``: trained weights as plain data and back (submission log, published evidence,
  the specified model the grader rebuilds).
"""

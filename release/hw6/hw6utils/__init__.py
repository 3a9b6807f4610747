"""Helpers that travel with the HW6 notebooks.

nbgrader copies this package into the student release and restores the instructor's copy
when it autogrades, so code here is trusted: students use it, they do not edit it. It holds no answer:
whatever students write (and the grader's judges and reference implementations) is instructor-only code
in ``hw6grading``, which is never released.
Import what you need from the submodules, e.g. ``from hw6utils.checks import assert_close``.

One concept per module:

* ``checks``: readable assertions and ``check`` for test cells (and the grader's comparisons).
* ``records``: the check record format, how results travel from the kernel to the grader.
* ``symbolic``: written expressions (Problem 1's derivations) read as data and judged by equivalence.
* ``figures``: the diagrams shown in the notebooks.
* ``beam``: the decoder of Figure 2 and random decoders for Problem 2 (drawn by ``figures``).
* ``gradients``: the Problem 3d set-up (a rescaled layer, the student's model, data and measurement).
* ``gradviz``: the Problem 3d plot and interactive widget around the student's measurement.
* ``standins``: trusted recurrent layers that stand in for the student's in the stacking tests.
* ``training``: the training loop of Problem 3k (on the student's data and loss) and its evidence.
* ``surname_data``: downloading and verifying the surname data set of Problem 4.
* ``surnames``: the Problem 4 pipeline around the student's encoding (splits, training, evaluation, plots).
* ``surname_log``: trained weights as plain data and back (submission log, published evidence).
"""

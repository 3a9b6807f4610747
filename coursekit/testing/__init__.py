"""Fixtures for people who test or benchmark a course (like ``numpy.testing``).

- ``courses``: the course the tests run against (the one around the working directory, as the
  ``coursekit`` command finds it), its folders, and throwaway copies of it;
- ``tiny_course``: a two-notebook fixture assignment for fast tests of the tooling;
- ``notebooks``: a source notebook's solution and test cells run in-process;
- ``tiny_layers``: small RNN/LSTM layers with Problem 3's interface;
- ``submission_logs``: the reference Problem 4 model trained and logged as a student would.
"""

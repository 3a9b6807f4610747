"""Tests of the instructor tooling (coursekit/), mostly on the tiny fixture course."""

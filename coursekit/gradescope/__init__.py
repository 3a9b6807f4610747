"""Gradescope autograder for the course: build the zip (``build``), grade inside Gradescope's container
(``run``), write ``results.json`` (``results``), and read Gradescope's "Export Submissions" zip (``export``)."""

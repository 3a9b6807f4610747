"""Test-only support code shared by the test folders (``from tests.support.browser import ...``)."""

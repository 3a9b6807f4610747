"""Support code shared by the tests (imported as a package: `from support.browser import ...`)."""

"""coursekit: instructor tooling for the HW6 course kit (one package, one CLI)."""
__version__ = "0.1.0"

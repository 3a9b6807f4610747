"""The kit's tests, a package: support code is imported as ``tests.support.<module>`` or ``tests.hw6.<module>``;
fixtures shared with the benchmarks live in ``coursekit.testing``."""

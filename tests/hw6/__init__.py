"""Tests of the hw6 notebooks and their helper package (source/hw6); non-test modules here are hw6 support."""

"""Provides benchmarks of the generation engine and the local stack they and the reliability
tests run on (bench/README.md)."""

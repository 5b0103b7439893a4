"""Latency on a named hardware target: measurement, lookup tables, and per-subnet timing."""

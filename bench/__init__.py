"""Benchmarks: each ``bench/bench_*.py`` runs with one command and prints its figures (not run by pytest).

``make bench`` (``python -m bench.run_all``) runs them all in sequence.
"""

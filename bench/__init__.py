"""Performance benchmarks: every figure is a ratio against the raw library measured in the same run.

Run with ``python -m bench.run`` (``make bench``); results land in ``bench/results.json`` and
``bench/RESULTS.md``.
"""

"""``make bench``: protocol efficiency and cost per record, measured in one run (``python -m tests.benchmarks``).

One module per measurement (``bench_*.py``, each with ``run(ctx) -> list[Figure]``); :mod:`.report` prints the
markdown table and writes the JSON. Not part of the pass/fail suite: targets are reported, never asserted (only
``test_bench_smoke.py`` runs, in ``--quick`` mode, to check that every figure is produced).
"""

"""A run directory: its layout and the one place that reads and writes it (best/, last/,
source.json, metrics.jsonl, the lock, config.json's envelope), metrics rows, and listing the
runs under checkpoints/ without torch (the Models screen opens at once).

Imports charlm.corpus (a run's vocabulary) and the base modules.
"""

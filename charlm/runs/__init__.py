"""A run directory: its layout and the one place that reads and writes it (best/, last/,
source.json, metrics.jsonl, the lock); which directory is a checkpoint (config.json's envelope,
a CKPT argument resolved); metrics rows; and listing the runs under checkpoints/, all without
torch (the Models screen opens at once).

Imports charlm.corpus (a run's vocabulary) and the base modules.
"""

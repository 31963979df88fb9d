"""charlm: train a character-level language model on your own text.

The core, in the order a run goes through it (each package imports only those above it here;
pyproject.toml's import-linter contracts check it):

    machine/    the CPU, devices, threads, the allocator, what was timed here
    corpus/     a CORPUS argument -> files -> normalised text -> vocabulary -> encoded ids, batches
    runs/       a run directory's layout, reading and writing it; listing runs
    model/      the network and its checkpoint format
    generate/   the sampler and the per-character engine (and its C version)
    train/      the trainer and all it needs; launch builds one for a new or resumed run
    analysis/   probe, neurons, novelty, shading, references

and the base every layer uses: config (the configs and their defaults), errors (UsageError),
paths (where runs, corpora and caches live), cancel (stopping work from another thread),
units (nats and bits). The front ends sit on top: cli/ (`charlm COMMAND`) and tui/ (the app).
"""
import os as _os

__version__ = "0.1.0"

# Apple's GPU lacks some of PyTorch's operations: PyTorch then runs those on the CPU (warning once
# for each) instead of stopping the run. It reads this when torch is imported, hence here.
_os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

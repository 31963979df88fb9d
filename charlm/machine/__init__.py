"""The machine charlm runs on: the CPU's model and flags (read once), where and in what
precision to compute, how many threads to use beside whatever else runs, the allocator
setting, the app's bound on oneDNN's kernel cache, and a small cache of what was timed here
that training and generation both use without importing each other.

Imports only charlm's base modules (config, errors, paths, cancel, units) and torch.
"""

"""charlm's per-character step in C (step.c), built on this machine on first use (build.py)
and driven through ctypes (net.py). Optional: without a C compiler charlm runs the same API on
PyTorch's kernels."""

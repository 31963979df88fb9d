"""Text, from a CORPUS argument to ids: reading files (a file, a directory, a glob)
as one normalised stream, what a CORPUS argument names (files, catalog corpora, sets), the
catalog and fetching with checksums, the character vocabulary, the encoded corpus cached by
content hash and its split, text statistics, and the n-gram yardsticks of a text. No torch
here (pyproject.toml's contracts keep it so): a command that only reads a text never waits for it.

Imports only charlm's base modules.
"""

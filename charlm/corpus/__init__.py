"""Text, from a CORPUS argument to batches of ids: reading files (a file, a directory, a glob)
as one normalised stream, what a CORPUS argument names (files, catalog corpora, sets), the
catalog and fetching with checksums, the character vocabulary, the encoded corpus cached by
content hash, its split and stream batches, text statistics, and the n-gram yardsticks of a
text. No torch here.

Imports only charlm's base modules.
"""

"""Text from a model: the streaming sampler (a generator that reads its controls at every
character), the per-character engine that does the least work a character needs, the
model's weights laid out for it, and its optional C version (native/, built on first use).

Imports charlm.model, charlm.corpus, charlm.machine and the base modules.
"""

"""The network (embedding, stacked recurrent layers, locked dropout, head) and its checkpoint
format: safetensors + JSON + tokenizer.json, written atomically, never unpickled.

Imports charlm.runs (where a checkpoint lives in a run), charlm.corpus (the vocabulary) and
the base modules.
"""

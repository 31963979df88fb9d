"""charlm: train a character-level language model on your own text."""
__version__ = "0.1.0"

"""What a trained network learned: what it expected at each character (probe), its units'
activations and which track a pattern (neurons; the patterns, read from the text alone, in
patterns), how much of a text the training text already holds (novelty, over a suffix index),
how results are coloured (shading), and what a loss is worth (references).

May import every core package below it; never the app or the CLI.
"""

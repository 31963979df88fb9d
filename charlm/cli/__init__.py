"""The headless commands: train, sample, eval, info, corpus."""

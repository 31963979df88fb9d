"""Training: the trainer (set-up, its batches, the loop, what is saved and restored), one weight
update, the optimizer and schedule, validation, what the trainer reports, several processes under
torchrun, fine-tuning from another run, auto sizing, speed measurement, the memory footprint,
and the faults tests inject. `launch` builds the trainer for a new or resumed run.

Imports charlm.generate (samples while training), charlm.model, charlm.runs, charlm.corpus,
charlm.machine and the base modules.
"""

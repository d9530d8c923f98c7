"""Training: the loop (trainer.py) and its parts: batch samplers (sampling.py), a step's pairs as token ids
(batch.py, loader.py), forward passes (passes.py), the loss (loss.py), the compared step strategies (steps.py),
memory probing (memory.py), random states (randomness.py) and checkpoints (checkpoints.py)."""

"""Learning from corrections: fine-tune the served model on what labelers fixed, keep every
model as a version, promote a new one only when held-out NoC@90 does not get worse."""

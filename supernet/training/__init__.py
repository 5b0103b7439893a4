"""Training: its options, the trainer and its hooks, arch sampling, a run on this machine, and
fine-tuning one subnet."""

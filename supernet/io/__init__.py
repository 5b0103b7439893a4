"""What goes to and comes from disk: atomic writes, run folders and logs, checkpoints, exports."""

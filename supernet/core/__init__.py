"""Core values and seams: arch values and spaces, the registry and the space contract, tasks and
distillation losses, placement (device and precision), option checks, signals. Imports no other stage."""

"""Elastic layers (one slicing rule serves forward and extraction), LoRA slicing, the CPU training
layout, BN recalibration. Imports ``core`` only."""

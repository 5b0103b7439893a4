"""Evaluating archs: one subnet (BN recalibrated, the task's score), the evaluator seam the search
calls, and the evaluator of a trained checkpoint."""

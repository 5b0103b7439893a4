"""Predictors and cost counting."""

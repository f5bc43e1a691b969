"""Scoring strategies honestly: labels, walk-forward windows, the development/holdout split, noise floor, CIs."""

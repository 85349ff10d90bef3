"""Evaluation: AUC per task, log loss, calibration and score histograms."""

"""Training: mini-batches from memory-mapped samples, Adam, per-epoch eval AUC, early stopping,
resumable checkpoints, and data-parallel runs under ``torchrun``."""

"""dipn: on-device purchase-intent prediction after DIPN (Guo et al., KDD'19)."""

__version__ = "0.1.0"

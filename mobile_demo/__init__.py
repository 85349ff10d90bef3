"""The device side, in Python: what a phone runs. Depends on numpy, dipn.features and one runtime.

A Kotlin or Swift app ports only the encoder (from the bundle's feature manifest) and calls the
same artifact through its platform's runtime; this package is the reference implementation.
"""

"""The device side, in Python: what a phone runs. Depends on numpy, httpx, ``dipn.features`` (the
encoder), ``dipn.bundle`` (checking and running a bundle, one runtime), ``dipn.wire`` (what it
sends) and nothing else of dipn; ``tests/test_layers.py`` holds it to that, and to loading none of
``HOST_ONLY`` however a runner is built.

A Kotlin or Swift app ports only the encoder (from the bundle's feature manifest) and calls the
same artifact through its platform's runtime; this package is the reference implementation.
``mobile_demo.replay`` is no part of it: a host harness (polars, a live endpoint) that drives many
phones through it.
"""

# What the host stack loads and a phone never may: training, conversion, data frames, the server.
HOST_ONLY = ("torch", "tensorflow", "polars", "pyarrow", "pandas", "sklearn", "lightgbm", "onnx", "coremltools",
             "fastapi", "sqlalchemy", "pydantic", "uvicorn", "matplotlib")  # fmt: skip

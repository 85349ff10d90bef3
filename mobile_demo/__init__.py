"""The device side, in Python: what a phone runs. Depends on numpy, httpx, ``dipn.features`` (the
encoder), ``dipn.bundle`` (checking and running a bundle, one runtime), ``dipn.wire`` (what it
sends) and nothing else of dipn; ``tests/test_layers.py`` holds it to that, and to loading none of
``HOST_ONLY`` however a runner is built.

The API (docs/device.md): ``IntentScorer.create_from_options(IntentScorerOptions(...))``, typed
events (``Page``, ``Swipe``, ``Touch``, ``Tap``, ``Browse``), ``Score`` results to a listener, the
scoring and posting policies, and ``Uplink`` (``mobile_demo.uplink``), whose ``submit`` is that
listener. A Kotlin, Swift or TypeScript app ports the encoder (from the bundle's manifests) and
these policies, and calls the same artifact through its platform's runtime; this package is the
reference implementation. ``mobile_demo.replay`` is no part of it: a host harness (polars, a live
endpoint) that drives many phones through it.
"""

# What the host stack loads and a phone never may: training, conversion, data frames, the server.
HOST_ONLY = ("torch", "tensorflow", "polars", "pyarrow", "pandas", "sklearn", "lightgbm", "onnx", "coremltools",
             "fastapi", "sqlalchemy", "pydantic", "uvicorn", "matplotlib")  # fmt: skip

from mobile_demo.errors import DeviceError, InvalidArgumentError, InvalidEventError  # noqa: E402
from mobile_demo.events import Browse, Event, Page, Swipe, Tap, Touch, event_from_row  # noqa: E402
from mobile_demo.policies import PostingPolicy, ScoringPolicy  # noqa: E402
from mobile_demo.scorer import IntentScorer, IntentScorerOptions, Score  # noqa: E402

__all__ = ["HOST_ONLY", "Browse", "DeviceError", "Event", "IntentScorer", "IntentScorerOptions", "InvalidArgumentError",
           "InvalidEventError", "Page", "PostingPolicy", "Score", "ScoringPolicy", "Swipe", "Tap", "Touch",
           "event_from_row"]  # fmt: skip

"""The score record's rules, shared by the endpoint's schema and the device's uplink.

Standard library only: the device imports this to refuse at ``submit`` a score the endpoint would
refuse, so a queued record is one the endpoint can take, and a batch is never larger than it takes.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping

WIRE_FIELDS = ("device_id", "model_version", "p_realtime", "p_longterm", "ts")
MAX_SCORES_PER_POST = 256
EPOCH_2000_MS = 946_684_800_000  # a ts before this is not milliseconds since the epoch
MAX_TS_MS = 10**15  # exclusive
MODEL_VERSION_PATTERN = r"^[A-Za-z0-9._+-]{1,64}$"
DEVICE_ID_PATTERN = r"^[0-9a-f]{32}$"
# The endpoint's 422 names each refused score as "scores.<index>.<field>: <reason>".
REFUSED_SCORE = re.compile(r"(?:^|; )scores\.(\d+)\.")


def score_problem(record: Mapping[str, object]) -> str | None:
    """Why the endpoint would refuse this score record (None: it would take it)."""
    if set(record) != set(WIRE_FIELDS):
        return f"fields must be exactly {', '.join(WIRE_FIELDS)}"
    if not isinstance(record["device_id"], str) or not re.fullmatch(DEVICE_ID_PATTERN, record["device_id"]):
        return "device_id must be 32 lowercase hex digits"
    if not isinstance(record["model_version"], str) or not re.fullmatch(MODEL_VERSION_PATTERN, record["model_version"]):
        return "model_version must be 1-64 characters of [A-Za-z0-9._+-]"
    for name in ("p_realtime", "p_longterm"):
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and 0.0 <= value <= 1.0
        ):
            return f"{name} must be a finite number in [0, 1]"
    ts = record["ts"]
    if isinstance(ts, bool) or not isinstance(ts, numbers.Integral) or not EPOCH_2000_MS <= ts < MAX_TS_MS:
        return "ts must be integer milliseconds since the epoch (after 2000)"
    return None


def refused_indices(detail: str) -> set[int]:
    """The indices of the scores a 422 ``invalid_scores`` detail names."""
    return {int(index) for index in REFUSED_SCORE.findall(detail)}

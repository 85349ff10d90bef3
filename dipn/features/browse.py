"""Browse-interactive view (Table 3c): browse, search, collect, cart and purchase actions."""

from __future__ import annotations

import numpy as np

from dipn.features import buckets
from dipn.features.columns import Columns, category_values, column, string_column
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import BROWSE_ACTIONS, Group, value_to_id
from dipn.features.timing import checked_timestamps


def encode_browse(columns: Columns, manifest: FeatureManifest, prev_ts: np.ndarray) -> np.ndarray:
    """Raw browse-view columns -> (n, 6) int32 ids: type, leaf and top category, page, stay, hour.

    ``prev_ts`` is accepted for a uniform signature: Table 3c has no gap feature.
    """
    cfg = manifest.config

    def vocab_ids(name: str) -> np.ndarray:
        return manifest.vocabulary(cfg.spec(Group.BROWSE, name)).ids(string_column(columns, name))

    action = category_values(string_column(columns, "action"), BROWSE_ACTIONS, "browse action")
    stay = np.nan_to_num(column(columns, "stay_ms").astype(np.float64), nan=0.0)
    hour = buckets.hour_of_day(checked_timestamps(column(columns, "ts")), cfg.utc_offset_minutes)
    out = [
        value_to_id(action),
        vocab_ids("leaf_category"),
        vocab_ids("top_category"),
        vocab_ids("page"),
        value_to_id(buckets.stay_time_bucket(stay)),
        value_to_id(hour),
    ]
    return np.stack(out, axis=-1).astype(np.int32)

"""Per-user static groups: history counts (Table 3d) and profile levels (Table 3e)."""

from __future__ import annotations

import numpy as np

from dipn.features import buckets
from dipn.features.columns import Columns, column
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import Group, value_to_id


def encode_history(columns: Columns, manifest: FeatureManifest) -> np.ndarray:
    """History snapshot rows -> (n, 6) int32 ids of capped counts."""
    specs = manifest.config.group(Group.HISTORY)
    out = [value_to_id(buckets.capped_count(column(columns, s.source), s.vocab_size)) for s in specs]
    return np.stack(out, axis=-1).astype(np.int32)


def encode_profile(columns: Columns, manifest: FeatureManifest) -> np.ndarray:
    """Profile rows -> (n, 6) int32 ids of clipped levels."""
    specs = manifest.config.group(Group.PROFILE)
    out = [value_to_id(buckets.clipped_level(column(columns, s.source), s.vocab_size)) for s in specs]
    return np.stack(out, axis=-1).astype(np.int32)

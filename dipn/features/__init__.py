"""Feature encoding of the paper's Table 3, shared by training (batch) and devices (incremental).

Depends on numpy only: the device side imports this package and nothing heavier.
"""

from dipn.features.buckets import step_bucket, stay_time_bucket
from dipn.features.columns import VIEW_COLUMNS, Factorized, factorize
from dipn.features.manifest import MASK_FEATURE, FeatureManifest, vocab_key
from dipn.features.spec import (
    OOV_ID,
    PAD_ID,
    SEQUENCE_GROUPS,
    SEQUENCE_LENGTH,
    TABLE3,
    FeatureConfig,
    FeatureSpec,
    Group,
    Kind,
)
from dipn.features.stream import StreamEncoder
from dipn.features.timing import previous_timestamps
from dipn.features.views import SEQUENCE_ENCODERS, STATIC_ENCODERS
from dipn.features.vocabulary import Vocabulary

__all__ = [
    "MASK_FEATURE",
    "OOV_ID",
    "PAD_ID",
    "SEQUENCE_ENCODERS",
    "SEQUENCE_GROUPS",
    "SEQUENCE_LENGTH",
    "STATIC_ENCODERS",
    "TABLE3",
    "VIEW_COLUMNS",
    "Factorized",
    "FeatureConfig",
    "FeatureManifest",
    "FeatureSpec",
    "Group",
    "Kind",
    "StreamEncoder",
    "Vocabulary",
    "factorize",
    "previous_timestamps",
    "stay_time_bucket",
    "step_bucket",
    "vocab_key",
]

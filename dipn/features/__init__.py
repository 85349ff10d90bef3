"""The raw-event contract, the feature encoding of the paper's Table 3 and the assembly of a model's
inputs, shared by training (batch) and devices (incremental), and the names of inputs and outputs.

Depends on numpy only: the device side imports this package and nothing heavier.
"""

from dipn.features.buckets import stay_time_bucket, step_bucket
from dipn.features.columns import Factorized, factorize
from dipn.features.contract import VIEW_COLUMNS
from dipn.features.encoders import SEQUENCE_ENCODERS, STATIC_ENCODERS
from dipn.features.inputs import inputs_at_cut, left_pad, merge_by_time, static_ids
from dipn.features.manifest import FeatureManifest, vocab_key
from dipn.features.spec import (
    MASK_FEATURE,
    MERGED,
    OOV_ID,
    OUTPUTS,
    PAD_ID,
    SEQUENCE_GROUPS,
    SEQUENCE_LENGTH,
    STATICS,
    TABLE3,
    TASK_OF_OUTPUT,
    TASKS,
    VIEWS,
    FeatureConfig,
    FeatureSpec,
    Group,
    Kind,
)
from dipn.features.stream import StreamEncoder
from dipn.features.timing import previous_timestamps
from dipn.features.vocabulary import Vocabulary

__all__ = [
    "MASK_FEATURE",
    "MERGED",
    "OUTPUTS",
    "OOV_ID",
    "PAD_ID",
    "SEQUENCE_ENCODERS",
    "SEQUENCE_GROUPS",
    "SEQUENCE_LENGTH",
    "STATICS",
    "STATIC_ENCODERS",
    "TABLE3",
    "TASKS",
    "TASK_OF_OUTPUT",
    "VIEWS",
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
    "inputs_at_cut",
    "left_pad",
    "merge_by_time",
    "previous_timestamps",
    "stay_time_bucket",
    "static_ids",
    "step_bucket",
    "vocab_key",
]

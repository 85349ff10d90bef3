"""The names every layer agrees on, declared once: the input groups a model reads and what it outputs.

Samples (``dipn.data.store``) are batched under these names, models read them, artifacts are
exported with them as their signature (``convert``) and the device feeds its runner by them
(``dipn.bundle``); a name typed twice could drift apart between training and the phone.
"""

from __future__ import annotations

from dipn.features.spec import CUT_GROUPS, SEQUENCE_GROUPS, STATIC_GROUPS

VIEWS = tuple(g.value for g in SEQUENCE_GROUPS)  # ("swipe", "tap", "browse"): the behaviour sequences
STATICS = tuple(g.value for g in (*STATIC_GROUPS, *CUT_GROUPS))  # ("history", "profile", "context")
MERGED = "merged"  # early fusion: the three views merged by timestamp, columns swipe|tap|browse
TASKS = ("realtime", "longterm")  # a sample's labels, in order; the order of a model's logits
OUTPUTS = ("p_realtime", "p_longterm")  # an artifact's outputs: each task's probability
TASK_OF_OUTPUT = dict(zip(OUTPUTS, TASKS, strict=True))

"""Each command's flags come from its config: every field reachable, typed values reach the config
in its units, and a flag left out keeps the config's default."""

from __future__ import annotations

from dataclasses import fields

import pytest

from dipn.cli import make_parser
from dipn.commands.build_samples import FLAGS, build_config
from dipn.commands.train import FLAGS as TRAIN_FLAGS
from dipn.training.config import TrainConfig
from dipn.errors import DipnValidationError
from dipn.samples.build import BuildConfig


def _parse(*argv: str):
    return make_parser().parse_args(["build-samples", "raw", "--out", "samples", *argv])


def test_every_build_config_field_has_a_flag() -> None:
    assert {f.field for f in FLAGS} | {"lenient"} == {f.name for f in fields(BuildConfig)}


def test_no_flag_is_the_config_default() -> None:
    assert build_config(_parse()) == BuildConfig()


def test_typed_values_reach_the_config_in_its_units() -> None:
    config = build_config(_parse("--idle-timer-seconds", "30", "--idle-limit-minutes", "10", "--min-count", "3",
                                 "--utc-offset-minutes", "480", "--lenient", "--val-days", "0.5"))  # fmt: skip
    assert (config.idle_timer_ms, config.idle_limit_ms, config.min_count) == (30_000, 600_000, 3)
    assert (config.utc_offset_minutes, config.lenient, config.val_days) == (480, True, 0.5)


def test_a_value_the_config_refuses_is_a_one_line_error() -> None:
    with pytest.raises(DipnValidationError, match="label horizons"):
        build_config(_parse("--realtime-hours", "30"))


def test_every_train_flag_is_a_train_config_field() -> None:
    assert {f.field for f in TRAIN_FLAGS} <= {f.name for f in fields(TrainConfig)}


def test_train_flags_reach_the_config() -> None:
    from dipn.commands.train import resolve_config

    args = make_parser().parse_args(["train", "samples", "--out", "run", "--epochs", "3", "--amp", "--lr", "0.01"])
    config = resolve_config(args)
    assert (config.epochs, config.amp, config.lr) == (3, True, 0.01)
    assert resolve_config(make_parser().parse_args(["train", "samples", "--out", "run"])) == TrainConfig()

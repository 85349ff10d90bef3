"""The bucket rules a manifest spells out for a port's author are the encoder's rules: each formula
string is evaluated as written, over a grid of inputs, against the function the encoder runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dipn.features import FeatureManifest, buckets
from dipn.features.spec import FeatureConfig

RULES = FeatureManifest(FeatureConfig()).to_dict()["rules"]
NAMES = {"floor": math.floor, "abs": abs, "clip": lambda x, low, high: min(max(x, low), high)}


def formula(text: str):
    """'value if condition; ...; else value', or a plain value -> a function of the named variables."""
    *cases, last = [part.strip() for part in text.split(";")]
    assert last.startswith("else ") or not cases, text
    expression = last.removeprefix("else ")
    for case in reversed(cases):
        value, condition = case.rsplit(" if ", 1)
        expression = f"({value}) if ({condition}) else ({expression})"
    code = compile(expression, "<manifest rule>", "eval")
    return lambda **names: eval(code, {"__builtins__": {}}, {**NAMES, **names})  # noqa: S307


GRID = [0, 0.5, 1, 99, 100, 101, 999, 1000, 1001, 5_000, 9_999, 10_000, 10_001, 10**6]


@pytest.mark.parametrize("rule", ["time_gap", "swipe_duration"])
def test_the_step_formula_is_the_step_function(rule: str) -> None:
    f_s, f_b = RULES[rule]["f_s"], RULES[rule]["f_b"]
    step = formula(RULES["step"])
    for x in GRID:
        assert step(x=x, f_s=f_s, f_b=f_b) == int(buckets.step_bucket(x, f_s, f_b)), x


def test_the_stay_formula_is_the_stay_buckets() -> None:
    stay = formula(RULES["stay_time"]["rule"])
    for seconds in [0, 0.4, 1, 119.9, 120, 125, 599, 600, 660, 1199, 1200, 5000]:
        assert stay(s=seconds) == int(buckets.stay_time_bucket(seconds * 1000)), seconds


def test_the_screen_swipe_and_direction_formulas_are_the_encoders() -> None:
    screen, length, direction = formula(RULES["screen"]["rule"]), formula(RULES["swipe_length"]), formula(
        RULES["direction"])  # fmt: skip
    segments, extent = RULES["screen"]["segments_x"], 1080.0
    for coord in [-5, 0, 63.5, 540, 1079, 1080, 2000]:
        assert screen(coord=coord, extent=extent, segments=segments) == int(
            buckets.screen_segment(np.array([coord]), np.array([extent]), segments)[0])  # fmt: skip
    for start, end in [(0, 0), (100, 900), (900, 100), (0, 1080), (1080, 0), (500, 499)]:
        delta = np.array([end - start], dtype=float)
        assert length(start=start, end=end, extent=extent, segments=segments) == int(
            buckets.signed_length_segment(delta, np.array([extent]), segments)[0])  # fmt: skip
        assert direction(start=start, end=end) == int(buckets.direction(delta)[0])


def test_the_count_and_level_formulas_are_the_encoders() -> None:
    count, level = formula(RULES["count"]), formula(RULES["level"])
    for value in [-3, 0, 1, 7, 99, 10**6]:
        assert count(count=value, vocab_size=100) == int(buckets.capped_count(value, 100))
        assert level(level=value, vocab_size=8) == int(buckets.clipped_level(value, 8))

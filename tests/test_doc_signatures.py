"""The artifact signatures the docs print are the converted artifacts' own: every `name` (1 or B,
dims...) a page gives for a model input is checked against the inputs of a real converted model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("docs/convert.md", "docs/models.md", "docs/device.md")
GROUPS = ("swipe", "tap", "browse", "history", "profile", "context")
SIGNATURE = re.compile(r"`(" + "|".join(GROUPS) + r")`(?:: int32)? \((?:1|B)((?:, (?:\d+|T))+)\)")
FULL_WIDTH = {"T": 256}  # the docs' letters for the default configuration's sizes


def documented() -> list[tuple[str, str, tuple[int, ...]]]:
    found = []
    for page in PAGES:
        text = (ROOT / page).read_text().replace("\n", " ")
        for name, dims in SIGNATURE.findall(text):
            found.append((page, name, tuple(FULL_WIDTH.get(d.strip(), None) or int(d) for d in dims.split(",")[1:])))
    return found


def test_the_pages_document_every_input() -> None:
    for page in ("docs/convert.md", "docs/models.md"):
        assert {name for p, name, _ in documented() if p == page} == set(GROUPS), page


def test_each_documented_signature_is_the_converted_models(tiny_bundle: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_bundle / "model.onnx"))
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim[1:]) for i in model.graph.input}
    assert set(shapes) == set(GROUPS)
    for page, name, dims in documented():
        expected = tuple(256 if d is None else d for d in dims)
        assert shapes[name] == expected, f"{page}: `{name}` {dims} but the artifact has {shapes[name]}"

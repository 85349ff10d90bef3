"""README's device example works as written: its code block runs, unchanged, beside a signed bundle
at ``bundle/`` and the signer's public key at ``keys/dipn-signing.pub``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_device_example() -> str:
    section = README.read_text().split("## On the phone", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md's 'On the phone' section has no python code block"
    return match.group(1)


def test_the_readme_device_example_runs_as_written(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from convert.signing import generate_keypair, load_private_key, sign_bundle

    shutil.copytree(tiny_bundle, tmp_path / "bundle")
    private_key, _ = generate_keypair(tmp_path / "keys")
    sign_bundle(tmp_path / "bundle", load_private_key(private_key))
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_device_example(), "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 (the README's code)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[:4]] == ["event", "event", "idle", "idle"], out
    assert "'scores_event': 2" in out[-1] and "'scores_idle': 2" in out[-1]

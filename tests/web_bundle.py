"""A small signed ONNX bundle (fp32 and int8) for the port checker, the TypeScript port and the
browser tests: the session's tiny checkpoint converted afresh, without TensorFlow or CoreML, and
signed with a key made for the test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private key, public key) PEM files."""
    from convert.signing import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("web-keys"), "web-signing")


@pytest.fixture(scope="session")
def onnx_bundle(tiny_checkpoint: Path, tiny_samples: Path, signing_keys: tuple[Path, Path],
                tmp_path_factory: pytest.TempPathFactory) -> Path:  # fmt: skip
    from convert.bundle import ConvertOptions, build_bundle

    out = tmp_path_factory.mktemp("web-bundle") / "bundle"
    options = ConvertOptions(formats=("onnx",), parity_samples=48, max_auc_drop=0.5, signing_key=signing_keys[0])
    build_bundle(tiny_checkpoint, tiny_samples, out, options, progress=lambda _: None)
    return out


WEB = Path(__file__).resolve().parents[1] / "mobile_demo" / "web"


@pytest.fixture(scope="session")
def web_build() -> Path:
    """mobile_demo/web compiled from the tree's sources (tsc, strict); skips where Node.js or the
    npm packages (make setup) are absent."""
    import shutil
    import subprocess

    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    if not (WEB / "node_modules" / "typescript").is_dir():
        pytest.skip("the npm packages of mobile_demo/web are not installed (make setup runs npm ci)")
    done = subprocess.run(["node", "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], cwd=WEB,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"tsc failed:\n{done.stdout}{done.stderr}"
    return WEB / "dist"

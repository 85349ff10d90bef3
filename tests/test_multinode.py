"""Multi-node data parallelism on loopback: two torchrun agents (2 nodes x 1 process) meet through
the c10d rendezvous, train together, and both ranks end with the same weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from dipn.training import checkpoint

NODE_SCRIPT = Path(__file__).with_name("ddp_node.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multinode_command(port: int, script: list[str]) -> list[str]:
    """The command line of docs/deploy.md, one per node; here both nodes are this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "dipn-test",
            *script]  # fmt: skip


def test_two_nodes_on_loopback_train_to_identical_weights(tiny_samples: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    command = multinode_command(_free_port(), [str(NODE_SCRIPT), str(tiny_samples), str(tmp_path)])
    nodes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]  # fmt: skip
    try:
        outputs = [node.communicate(timeout=240)[0] for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    for node, output in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, output[-3000:]
    ranks = [torch.load(tmp_path / f"rank-{r}.pt") for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    saved = checkpoint.load(tmp_path / "last.pt")
    assert saved["train_state"]["global_step"] == 3
    for name, value in ranks[0]["state"].items():
        assert torch.equal(ranks[1]["state"][name], value), name
        assert torch.equal(saved["model_state"][name], value), name

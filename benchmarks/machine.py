"""What machine a benchmark ran on, recorded beside every figure."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path


def machine_info() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = "unknown"
    import numpy
    info: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "git_revision": rev,
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def machine_line(info: dict[str, object]) -> str:
    return (f"{info['date']}, {info['cpu']}, {info['cores']} cores, {info['machine']}, "
            f"Python {info['python']}, torch {info.get('torch', '-')}, git {info['git_revision']}")  # fmt: skip

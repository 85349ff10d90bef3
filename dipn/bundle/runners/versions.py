"""Runtime versions: an artifact records the oldest runtime that runs its ops, and a runner refuses
an older one with a message that says so (rather than a crash inside the runtime)."""

from __future__ import annotations

from dipn.bundle.errors import RuntimeTooOldError


def version_tuple(version: str) -> tuple[int, ...]:
    """"2.13.0rc1+cpu" -> (2, 13, 0): the numeric release parts, for comparison."""
    parts = []
    for piece in str(version).split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_runtime_version(artifact: str, runtime: str, installed: str, required: str | None) -> None:
    """Refuse a runtime older than ``required`` with a message naming both versions."""
    if required and version_tuple(installed) < version_tuple(required):
        raise RuntimeTooOldError(
            f"{artifact} needs {runtime} >= {required} (the versions of the ops it uses); "
            f"{runtime} {installed} is installed: upgrade it, or use another artifact of the bundle"
        )

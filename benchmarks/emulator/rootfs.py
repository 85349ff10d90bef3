"""The emulated phone: two aarch64 Debian userlands under QEMU user mode, and QEMU's instruction counter.

Everything comes from Debian packages and PyPI wheels, pinned, so a rebuild gives the same bytes
to run (shared/notes/arm64-emulation.md has the recipe as it was checked):
  * ``bookworm``: Python 3.11 with the aarch64 wheels of numpy, onnxruntime, ai-edge-litert and
    cryptography: the device scorer (IntentScorer) runs here as it runs on the host;
  * ``bullseye``: Python 3.9 with tflite-runtime (its last aarch64 wheels need Python <= 3.10 and
    numpy < 2): what many shipped apps still embed; it scores the bundle's golden vectors;
  * ``libinsn.so``: QEMU's TCG plugin that counts executed guest instructions, compiled from the
    Debian source of the very qemu installed (a plugin must match its QEMU's API).

QEMU user mode reads ``/proc/cpuinfo`` and ``/sys/devices/system/cpu/*`` through the rootfs
prefix first; onnxruntime's CPU detection segfaults without them, so each rootfs gets fake ones
for the core being emulated (``write_fake_cpu``). The cache lives in ``.cache/emulator/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "emulator"
STAMP = ".dipn-userland.json"  # written last: a rootfs without it is incomplete
PLUGIN = CACHE / "plugins" / "libinsn.so"
HOST_TOOLS = {  # command -> Debian package that provides it
    "qemu-aarch64-static": "qemu-user-static",
    "qemu-aarch64": "qemu-user",  # dynamically linked: the only kind that loads TCG plugins
    "mmdebstrap": "mmdebstrap",
    "valgrind": "valgrind",
    "gcc": "gcc",
    "pkg-config": "pkg-config",
    "dpkg-source": "dpkg-dev",
}
PLUGIN_BUILD_PACKAGES = ("libglib2.0-dev",)
MIN_FREE_BYTES = 2_000_000_000  # two userlands (~350 MB) plus the qemu source tree while the plugin builds
# The newest ai-edge-litert with an aarch64 wheel for Python 3.11 (the host runs 2.x).
LITERT_AARCH64 = "ai-edge-litert==1.4.0"
# tflite-runtime's last aarch64 wheels (Python 3.9/3.10) were built against numpy 1.x.
TFLITE_RUNTIME_AARCH64 = ("tflite-runtime==2.13.0", "numpy==1.26.4")


@dataclass(frozen=True)
class Userland:
    """One emulated userland: a Debian suite, its Python, and the wheels it carries."""

    name: str
    suite: str
    python: str  # e.g. "3.11"
    platforms: tuple[str, ...]
    wheels: tuple[str, ...]

    @property
    def path(self) -> Path:
        return CACHE / f"{self.name}-arm64"

    @property
    def interpreter(self) -> str:
        return f"/usr/bin/python{self.python}"

    def built(self) -> dict | None:
        """The stamp of a complete build (versions inside), or None."""
        stamp = self.path / STAMP
        return json.loads(stamp.read_text()) if stamp.exists() else None


def _host_version(package: str) -> str:
    return metadata.version(package)


def bookworm() -> Userland:
    """numpy, onnxruntime and cryptography at the host's versions, so only the CPU differs."""
    wheels = (f"numpy=={_host_version('numpy')}", f"onnxruntime=={_host_version('onnxruntime')}",
              f"cryptography=={_host_version('cryptography')}", LITERT_AARCH64)  # fmt: skip
    return Userland("bookworm", "bookworm", "3.11", ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64"), wheels)


def bullseye() -> Userland:
    return Userland("bullseye", "bullseye", "3.9", ("manylinux2014_aarch64",), TFLITE_RUNTIME_AARCH64)


@dataclass(frozen=True)
class Core:
    """A phone CPU core as QEMU emulates it and as /proc/cpuinfo describes it."""

    qemu_cpu: str
    part: str
    features: str  # the kernel's hwcap names: what runtimes pick their kernels by


CORES = {
    # ARMv8.0: no dot product, no fp16 arithmetic (budget phones, 2014-2020).
    "cortex-a53": Core("cortex-a53", "0xd03", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    # ARMv8.2 with dot product and fp16 (mid-range and flagship phones from 2019).
    "cortex-a76": Core("cortex-a76", "0xd0b",
                       "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop "
                       "asimddp"),  # fmt: skip
}


def write_fake_cpu(rootfs: Path, core: Core, cpus: int = 2) -> None:
    """/proc/cpuinfo and the cpu lists of ``cpus`` cores of one kind, inside the rootfs prefix."""
    entry = ("processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
             "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 0\n")  # fmt: skip
    proc = rootfs / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "cpuinfo").write_text("\n".join(entry.format(i=i, features=core.features, part=core.part)
                                            for i in range(cpus)))  # fmt: skip
    cpu_dir = rootfs / "sys/devices/system/cpu"
    cpu_dir.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present", "online"):
        (cpu_dir / name).write_text(f"0-{cpus - 1}\n")


def debian_mirror() -> str:
    """The Debian archive apt uses on this host (bullseye is fetched from it too)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
               *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]  # fmt: skip
    for source in sources:
        if not source.is_file():
            continue
        for match in re.finditer(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", source.read_text(), re.M):
            url = match.group(1).rstrip("/")
            if url.endswith("/debian"):
                return url
    return "http://deb.debian.org/debian"


def missing_preconditions() -> str | None:
    """Why the emulator cannot be built here, or None when it can (root for apt, disk room)."""
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if missing and os.geteuid() != 0:
        return f"not root, and these Debian packages are missing: {' '.join(missing)}"
    if missing and shutil.which("apt-get") is None:
        return f"no apt-get to install {' '.join(missing)}"
    CACHE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(CACHE).free
    if free < MIN_FREE_BYTES:
        return f"{free / 1e9:.1f} GB free under {CACHE}, {MIN_FREE_BYTES / 1e9:.0f} GB needed"
    return None


def not_built_reason() -> str | None:
    """Why the benchmark cannot run now (nothing is downloaded to find out), or None."""
    for land in (bookworm(), bullseye()):
        if not land.built():
            return f"the {land.name} userland is not built ({land.path}): run `python -m benchmarks.emulator.build`"
    for tool in ("qemu-aarch64-static", "qemu-aarch64", "valgrind"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: run `python -m benchmarks.emulator.build`"
    if not PLUGIN.exists():
        return f"the instruction-count plugin {PLUGIN} is not built: run `python -m benchmarks.emulator.build`"
    return None


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


def install_host_tools() -> None:
    packages = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if not Path("/usr/include/glib-2.0/glib.h").exists():
        packages += PLUGIN_BUILD_PACKAGES
    if packages:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", *packages], env=env)


def build_userland(land: Userland) -> dict:
    """Debian's arm64 packages unpacked (no maintainer scripts run), then the wheels; returns the stamp."""
    shutil.rmtree(land.path, ignore_errors=True)
    command = ["mmdebstrap", "--quiet", "--variant=extract", "--architectures=arm64",
               f"--include=python{land.python},libstdc++6", land.suite, str(land.path)]  # fmt: skip
    if land.suite != "bookworm":  # the host's apt sources are bookworm's; name the other suite's main only
        command.append(f"deb {debian_mirror()} {land.suite} main")
    run(command)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--no-warn-conflicts",
           "--target", str(land.path / "opt/site"), "--only-binary=:all:", "--python-version", land.python]  # fmt: skip
    for platform in land.platforms:
        pip += ["--platform", platform]
    run(pip + list(land.wheels))
    stamp = {"suite": land.suite, "python": land.python, "wheels": installed_wheels(land.path / "opt/site")}
    (land.path / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
    return stamp


def installed_wheels(site: Path) -> dict[str, str]:
    """Distribution name -> version of what pip put in ``site``."""
    return {d.metadata["Name"].lower(): d.version for d in metadata.distributions(path=[str(site)])}


def build_insn_plugin() -> Path:
    """libinsn.so from ``apt-get source`` of the installed qemu (deb-src lists in the cache only,
    the host's apt configuration untouched); the source tree is removed afterwards."""
    version = subprocess.run(["dpkg-query", "-W", "-f", "${source:Version}", "qemu-user"], capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
    work = CACHE / "qemu-source"
    shutil.rmtree(work, ignore_errors=True)
    (work / "lists/partial").mkdir(parents=True)
    mirror = debian_mirror()
    (work / "sources.list").write_text(
        f"deb-src {mirror} bookworm main\ndeb-src {mirror} bookworm-updates main\n"
        f"deb-src {mirror}-security bookworm-security main\n"
    )
    apt = ["apt-get", "-q", "-o", f"Dir::Etc::SourceList={work / 'sources.list'}",
           "-o", "Dir::Etc::SourceParts=/dev/null", "-o", f"Dir::State::Lists={work / 'lists'}"]  # fmt: skip
    run(apt + ["update"], stdout=subprocess.DEVNULL)
    run(apt + ["source", "--download-only", f"qemu={version}"], cwd=work, stdout=subprocess.DEVNULL)
    dsc = next(work.glob("qemu_*.dsc"))
    run(["dpkg-source", "--no-check", "-x", dsc.name, "src"], cwd=work, stdout=subprocess.DEVNULL)
    src = work / "src"
    glib = subprocess.run(["pkg-config", "--cflags", "--libs", "glib-2.0"], capture_output=True, text=True,
                          check=True).stdout.split()  # fmt: skip
    PLUGIN.parent.mkdir(parents=True, exist_ok=True)
    run(["gcc", "-O2", "-shared", "-fPIC", f"-I{src / 'include/qemu'}", str(src / "tests/plugin/insn.c"),
         "-o", str(PLUGIN), *glib])  # fmt: skip
    (PLUGIN.parent / "qemu-version.txt").write_text(version + "\n")
    shutil.rmtree(work)
    return PLUGIN

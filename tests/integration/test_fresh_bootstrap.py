"""scripts/bootstrap.sh on a fresh machine: an externally managed Python (PEP 668 marker in its stdlib), no pip,
no uv, a fake HOME, PIP_* unset, PATH a directory of shims. It must get uv through a private venv (never pip into
the system Python, never --break-system-packages), and a machine without Python >= 3.11 gets one line saying
what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARKER_CHECK = ("import os, sysconfig; "
                "print(os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))")


def _externally_managed_python(tmp: Path) -> Path:
    """A `venv --without-pip` of a base Python whose stdlib carries PEP 668's marker: no pip, marker in force."""
    for base in ("/usr/bin/python3", getattr(sys, "_base_executable", sys.executable)):
        if not os.access(base, os.X_OK):
            continue
        probe = subprocess.run([base, "-c", MARKER_CHECK], capture_output=True, text=True)
        if probe.stdout.strip() == "True":
            env_dir = tmp / "system-python"
            subprocess.run([base, "-m", "venv", "--without-pip", str(env_dir)], check=True)
            python = env_dir / "bin" / "python3"
            assert subprocess.run([python, "-c", MARKER_CHECK], capture_output=True, text=True).stdout.strip() == "True"
            assert subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode != 0
            return python
    pytest.skip("no Python with an EXTERNALLY-MANAGED marker on this machine to build the fresh one from")


def _fresh(tmp: Path, python: Path | None) -> tuple[Path, dict[str, str]]:
    """A checkout copy holding the bootstrap, a fake HOME and a PATH of shims: sh, id, env and python3 only."""
    checkout = tmp / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", checkout / "scripts" / "bootstrap.sh")
    shutil.copy(ROOT / "Makefile", checkout / "Makefile")
    shims = tmp / "shims"
    shims.mkdir()
    for tool in ("sh", "id", "env"):
        found = shutil.which(tool)
        assert found, tool
        (shims / tool).symlink_to(found)
    if python is not None:
        (shims / "python3").symlink_to(python)
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PYTHON", "PYENV", "CONDA"))}
    env.update(PATH=str(shims), HOME=str(home))
    return checkout, env


def _bootstrap(checkout: Path, env: dict[str, str], *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "scripts/bootstrap.sh", *args], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_dry_run_chooses_a_private_venv(tmp_path: Path) -> None:
    python = _externally_managed_python(tmp_path)
    checkout, env = _fresh(tmp_path, python)
    env["HULK_OPS_BOOTSTRAP_DRY_RUN"] = "1"
    done = _bootstrap(checkout, env)
    assert done.returncode == 0, done.stderr
    planned = [line.removeprefix("would run: ") for line in done.stderr.splitlines() if line.startswith("would run:")]
    shim = str(tmp_path / "shims" / "python3")
    assert planned == [f"{shim} -m venv .tools",
                       ".tools/bin/python -m pip install --quiet --disable-pip-version-check uv"]
    assert done.stdout.strip() == ".tools/bin/uv"
    assert "--break-system-packages" not in done.stderr and "--user" not in done.stderr
    assert _bootstrap(checkout, env, "--python").stdout.strip() == shim


def test_find_obtains_nothing(tmp_path: Path) -> None:
    """`--find` (what tests use to reach make's uv) only looks: no uv here, so exit 1 and nothing created."""
    checkout, env = _fresh(tmp_path, _externally_managed_python(tmp_path))
    done = _bootstrap(checkout, env, "--find")
    assert done.returncode == 1 and done.stdout == ""
    assert "run make venv" in done.stderr
    assert not (checkout / ".tools").exists()


def test_installs_uv_into_the_private_venv(tmp_path: Path) -> None:
    """The real thing: uv comes from PyPI into .tools; the system Python gains nothing."""
    python = _externally_managed_python(tmp_path)
    checkout, env = _fresh(tmp_path, python)
    done = _bootstrap(checkout, env, timeout=300)
    assert done.returncode == 0, done.stderr
    uv = checkout / done.stdout.strip()
    assert uv == checkout / ".tools" / "bin" / "uv"
    version = subprocess.run([uv, "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and version.stdout.startswith("uv ")
    assert subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode != 0
    assert not (tmp_path / "home" / ".local").exists()
    again = _bootstrap(checkout, env)  # the second run reuses it without touching the network
    assert again.returncode == 0 and again.stdout.strip() == ".tools/bin/uv" and again.stderr == ""
    found = _bootstrap(checkout, env, "--find")
    assert found.returncode == 0 and found.stdout.strip() == ".tools/bin/uv" and found.stderr == ""


@pytest.mark.parametrize("python", ["none", "too-old"])
def test_no_usable_python_one_line(tmp_path: Path, python: str) -> None:
    old = None
    if python == "too-old":  # answers like a Python 3.9 would: the version check fails
        old = tmp_path / "old-python"
        old.write_text("#!/bin/sh\nexit 1\n")
        old.chmod(0o755)
    checkout, env = _fresh(tmp_path, old)
    done = _bootstrap(checkout, env)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines == ["hulk-ops needs Python 3.11 or newer: install it "
                     "(Debian/Ubuntu: sudo apt-get install python3 python3-venv)"]

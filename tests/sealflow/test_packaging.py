"""What the distribution promises its users: typed packages, shell completion, its platforms."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "schemas", "keys", "broker", "store", "identity",
    "gateway", "workers", "parser", "audit", "sealflow",
]  # fmt: skip


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_ships_py_typed(package: str) -> None:
    """PEP 561: each package carries py.typed, so type checkers use our hints downstream."""
    assert resources.files(package).joinpath("py.typed").is_file()


def test_package_data_includes_py_typed() -> None:
    """The marker is declared as package data, so a wheel (the Dockerfile's install) has it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["*"]


def test_stated_python_versions_include_the_running_one() -> None:
    """The classifiers name the interpreter the suite runs on, and the project is POSIX-only."""
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    version = f"Programming Language :: Python :: {sys.version_info.major}.{sys.version_info.minor}"
    assert version in classifiers
    assert "Operating System :: POSIX :: Linux" in classifiers


def test_bash_completion_completes_commands() -> None:
    """`_SEALFLOW_COMPLETE=bash_complete` (what the README's completion line installs) works."""
    sealflow = Path(sys.executable).with_name("sealflow")
    env = os.environ | {
        "COMP_WORDS": "sealflow jo",
        "COMP_CWORD": "1",
        "_SEALFLOW_COMPLETE": "bash_complete",
    }
    answer = subprocess.run([sealflow], env=env, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert "plain,jobs" in answer.stdout.splitlines()
    script = subprocess.run(
        [sealflow],
        env=os.environ | {"_SEALFLOW_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "complete -o nosort -F _sealflow_completion sealflow" in script.stdout

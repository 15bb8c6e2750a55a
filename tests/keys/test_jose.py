"""PyJWT is used in one module only, so that every JOSE decision can be audited in one place."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["schemas", "keys", "broker", "store", "identity", "gateway", "workers", "parser", "audit", "sealflow"]


def _imports_jwt(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name == "jwt" or name.startswith("jwt.") for name in names):
            return True
    return False


def test_only_keys_jose_imports_pyjwt() -> None:
    importers = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        if (ROOT / package).is_dir()
        for path in (ROOT / package).rglob("*.py")
        if _imports_jwt(path)
    )
    assert importers == ["keys/jose.py"]

"""Holds the line on the architecture: the library never imports kfp; components use one image."""

import ast
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_library_never_imports_kfp():
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "kfops").rglob("*.py") if "kfp" in _imports(p)
    ]
    allowed = {
        "kfops/commands/run.py",
        "kfops/commands/compile.py",
        "kfops/commands/submit.py",
        "kfops/commands/monitor.py",
        "kfops/localrun.py",
        "kfops/submit.py",
    }
    assert [o for o in offenders if o not in allowed] == []


def test_every_library_package_is_packaged():
    """pyproject lists packages one by one: a new subpackage left out installs fine in editable
    mode (tests pass) and is missing from the image and from `pip install kfops`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "kfops").rglob("__init__.py")
    }
    assert on_disk - listed == set()

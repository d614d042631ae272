"""`kfops compile`: every pipeline and every component to KFP YAML.

Pipelines and components are discovered from the `kfops.pipelines` and `kfops.components` packages,
so a new one is compiled without editing a list.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

from kfp import compiler
from kfp.dsl import base_component, graph_component


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops compile`."""
    p = subparsers.add_parser("compile", help="compile pipelines and components to KFP YAML")
    p.add_argument("--out-dir", default="pipelines/compiled", help="pipeline YAML directory")
    p.add_argument(
        "--components-dir", default="components/compiled", help="component YAML directory"
    )
    p.set_defaults(func=main)


def discover(package: str) -> dict[str, base_component.BaseComponent]:
    """Name -> component (or pipeline) object defined in each module of a package."""
    found = {}
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for attr, obj in vars(module).items():
            func = getattr(obj, "pipeline_func", None) or getattr(obj, "python_func", None)
            if isinstance(obj, base_component.BaseComponent) and func.__module__ == module.__name__:
                found[attr] = obj
    return found


def pipelines() -> dict[str, graph_component.GraphComponent]:
    """Pipelines in kfops.pipelines, keyed by their function name."""
    return {
        name: obj
        for name, obj in discover("kfops.pipelines").items()
        if isinstance(obj, graph_component.GraphComponent)
    }


def components() -> dict[str, base_component.BaseComponent]:
    """Components in kfops.components (pipelines excluded)."""
    return {
        name: obj
        for name, obj in discover("kfops.components").items()
        if not isinstance(obj, graph_component.GraphComponent)
    }


def compile_all(out_dir: str | Path, components_dir: str | Path) -> list[Path]:
    """Compiles everything; returns the written files."""
    written = []
    for directory, items in ((Path(out_dir), pipelines()), (Path(components_dir), components())):
        directory.mkdir(parents=True, exist_ok=True)
        for name, obj in sorted(items.items()):
            path = directory / f"{name}.yaml"
            compiler.Compiler().compile(obj, str(path))
            written.append(path)
    return written


def main(args: argparse.Namespace) -> int:
    """Compiles and lists the files."""
    for path in compile_all(args.out_dir, args.components_dir):
        print(path)
    return 0

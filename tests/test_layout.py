"""The layout of the code: the pages live in app_pages/ (never pages/), and no module of the core
(jaxstyle/) or of the UI package (ui/) imports in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

PACKAGES = ("jaxstyle", "ui")


def test_there_is_no_pages_folder():
    # With a pages/ folder, Streamlit 1.67 serves a direct link on a fresh server as a bare legacy
    # page, without the frame (dashboard.py); the pages are in app_pages/ for that reason.
    assert not (REPO / "pages").exists()
    assert (REPO / "app_pages").is_dir()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports anywhere (inside functions too, where a cycle
    hides best), except under ``if TYPE_CHECKING:``, which never runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(inner) for node in ast.walk(tree) if _is_type_checking(node) for inner in ast.walk(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(0, node.level - 1)):
                base = base.rpartition(".")[0]
            base = ".".join(part for part in ((base if node.level else ""), node.module or "") if part)
            # ``from a import b`` imports the module a.b when there is one, else a name from a.
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names)
    return (found & known) - {module}


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module name → the modules of the same packages it imports."""
    paths = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {module: _imported(module, path, set(paths)) for module, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each group of modules that import each other (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(component) > 1:
                found.append(_path_through(graph, component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _path_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A readable cycle inside ``component``: from its first module back to it."""
    members, start = set(component), min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for imported in sorted(graph[module] & members):
            if imported == start:
                return paths[module] + [start]
            if imported not in paths:
                paths[imported] = paths[module] + [imported]
                queue.append(imported)
    return component  # not reached: a strongly connected component always closes


def test_no_module_of_the_core_or_the_ui_imports_in_a_cycle():
    graph = import_graph(REPO, PACKAGES)
    assert {"jaxstyle.inputs", "jaxstyle.images", "jaxstyle.catalog", "ui.common", "ui.inputs"} <= set(graph)
    assert "jaxstyle.catalog" in graph["jaxstyle.inputs"]  # the graph sees `from jaxstyle import catalog`
    assert [" → ".join(cycle) for cycle in cycles(graph)] == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path: Path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def late():\n    from pkg.c import thing\n")
    (package / "c.py").write_text("from . import a\nthing = 1\n")
    (package / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n")
    (package / "e.py").write_text("import pkg.d\n")
    assert cycles(import_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_every_page_is_registered_in_the_navigation():
    import ui

    pages = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "app_pages").glob("*.py"))
    constants = sorted(value for name, value in vars(ui).items() if name.endswith("_PAGE"))
    assert pages == constants
    assert registered_pages(REPO / "dashboard.py") == sorted(name for name in vars(ui) if name.endswith("_PAGE"))


def registered_pages(path: Path) -> list[str]:
    """The names ``X`` of the ``st.Page(ui.X, ...)`` calls in the code of ``path`` (parsed, so
    that a comment or a string naming a page does not count)."""
    return sorted(
        node.args[0].attr
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) == "st.Page"
        and node.args
        and isinstance(node.args[0], ast.Attribute)
        and ast.unparse(node.args[0].value) == "ui"
    )


def test_the_navigation_check_reads_code_not_comments(tmp_path: Path):
    (tmp_path / "dashboard.py").write_text(
        "# st.Page(ui.LIVE_PAGE)\n"
        "import streamlit as st\n"
        "import ui\n"
        'pages = [st.Page(ui.HOME_PAGE, title="Home"), st.Page(ui.GENERATE_PAGE)]\n'
        'NOTE = "ui.STYLES_PAGE is not registered"\n'
    )
    assert registered_pages(tmp_path / "dashboard.py") == ["GENERATE_PAGE", "HOME_PAGE"]


def test_the_core_never_imports_streamlit():
    graph_roots = sorted((REPO / "jaxstyle").rglob("*.py"))
    importing = [
        path.relative_to(REPO).as_posix()
        for path in graph_roots
        if any(
            (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "streamlit" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "streamlit")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]
    assert importing == []


def test_the_core_errors_live_in_errors_py_and_their_former_homes_still_export_them():
    from jaxstyle import errors, jobs
    from jaxstyle.gallery import database
    from jaxstyle.instant import models

    errors_py = ast.parse((REPO / "jaxstyle" / "errors.py").read_text(encoding="utf-8"))
    error_names = {node.name for node in errors_py.body if isinstance(node, ast.ClassDef)}
    elsewhere = [
        f"{path.relative_to(REPO).as_posix()}: {node.name}"
        for path in sorted((REPO / "jaxstyle").rglob("*.py"))
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(base).split(".")[-1] in error_names for base in node.bases)
    ]
    assert elsewhere == []
    assert jobs.QueueFullError is errors.QueueFullError
    assert database.RunNotFound is errors.RunNotFound
    assert errors.RunNotFound.__bases__ == (errors.GalleryError, LookupError)
    assert models.ModelError is errors.ModelError

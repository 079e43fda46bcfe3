"""The layout of the code: the pages live in app_pages/ (never pages/), each defined once in
ui/pages.py; no module writes another's widget keys; and no module of the core (jaxstyle/) or of the
UI package (ui/) imports in a cycle; no module is past 600 lines; entry points live in their packages."""

from __future__ import annotations

import ast
import re
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


def test_every_page_is_defined_once_and_the_navigation_is_made_from_the_definitions():
    from ui import pages

    files = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "app_pages").glob("*.py"))
    assert sorted(page.path for page in pages.PAGES) == files  # every page file, each exactly once
    assert len({page.url_path for page in pages.PAGES}) == len({page.title for page in pages.PAGES}) == len(files)
    assert [page for page in pages.PAGES if page.default] == [pages.HOME]
    assert all(page.url_path == Path(page.path).stem for page in pages.PAGES)  # the addresses users know: /gallery, …
    # Nowhere else is a page registered or its script named: links and switches go through the table.
    assert page_registrations(REPO) == {"ui/pages.py": sorted(["st.Page", "st.navigation", *files])}
    assert "ui.pages.navigation" in calls(REPO / "dashboard.py")


def app_files(root: Path) -> list[Path]:
    """The app's code: dashboard.py, the pages and the ui package."""
    return [root / "dashboard.py", *sorted((root / "app_pages").glob("*.py")), *sorted((root / "ui").glob("*.py"))]


def calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


PAGE_SCRIPT = re.compile(r"app_pages/\w+\.py")


def page_registrations(root: Path) -> dict[str, list[str]]:
    """File → its calls of ``st.Page``/``st.navigation`` and the strings in it that are a page's
    script (``app_pages/<name>.py``); parsed, so that a comment or a sentence naming a page does not count."""
    found: dict[str, list[str]] = {}
    for path in app_files(root):
        if not path.is_file():
            continue
        names = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("st.Page", "st.navigation"):
                names.append(ast.unparse(node.func))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and PAGE_SCRIPT.fullmatch(node.value):
                names.append(node.value)
        if names:
            found[path.relative_to(root).as_posix()] = sorted(names)
    return found


def test_the_page_check_reads_code_not_comments(tmp_path: Path):
    (tmp_path / "app_pages").mkdir()
    (tmp_path / "ui").mkdir()
    (tmp_path / "dashboard.py").write_text(
        "# st.Page('app_pages/live.py')\n"
        "import streamlit as st\n"
        'NOTE = "st.navigation lists app_pages/home.py"\n'
        'st.switch_page("app_pages/home.py")\n'
    )
    (tmp_path / "ui" / "pages.py").write_text('import streamlit as st\nst.navigation([st.Page("app_pages/home.py")])\n')
    assert page_registrations(tmp_path) == {
        "dashboard.py": ["app_pages/home.py"],  # a switch by the script's path, outside the table
        "ui/pages.py": ["app_pages/home.py", "st.Page", "st.navigation"],
    }


# ----- widget keys: only the module that makes a widget writes its key ----------------------------


def _key_pattern(node: ast.AST) -> str | None:
    """A key as a regular expression: a string exactly, an f-string with ``.+`` for its values; None
    for a key made elsewhere (a name, or an f-string that starts with a value: the caller's key)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return "".join(re.escape(str(part.value)) if isinstance(part, ast.Constant) else ".+" for part in node.values)
    return None


def _key_example(node: ast.AST) -> str | None:
    """A key that ``node`` can be: a string itself, an f-string with each value as "\\0"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(part.value) if isinstance(part, ast.Constant) else "\0" for part in node.values)
    return None


def _resolved(node: ast.AST, names: dict[str, ast.AST]) -> ast.AST:
    """A name bound to a string or f-string in the module (``styles_key = f"i_styles_{name}"``) as that string."""
    return names.get(node.id, node) if isinstance(node, ast.Name) else node


def widget_keys(path: Path) -> set[str]:
    """The keys of the widgets (and containers) ``path`` makes, as patterns: every ``key=`` of a call."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = _string_names(tree)
    return {
        pattern
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "key" and (pattern := _key_pattern(_resolved(keyword.value, names))) is not None
    }


def _string_names(tree: ast.AST) -> dict[str, ast.AST]:
    return {
        target.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.JoinedStr))
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def session_state_writes(path: Path) -> list[tuple[int, str]]:
    """(line, key) of each key ``path`` writes into session state: ``ss[k] = …`` (alone or in a tuple),
    ``del ss[k]``, ``ss.pop(k)``, ``ss.setdefault(k, …)`` and ``ss.update({k: …})``, where ``ss`` is
    ``st.session_state`` or a name bound to it. A key the code computes is left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = _string_names(tree)
    aliases = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and ast.unparse(node.value) == "st.session_state"
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def is_state(node: ast.AST) -> bool:
        return ast.unparse(node) == "st.session_state" or (isinstance(node, ast.Name) and node.id in aliases)

    keys: list[tuple[int, ast.AST]] = []
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(element, ast.Subscript) and is_state(element.value):
                    keys.append((element.lineno, element.slice))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and is_state(node.func.value):
            if node.func.attr in ("pop", "setdefault", "__setitem__") and node.args:
                keys.append((node.lineno, node.args[0]))
            elif node.func.attr == "update" and node.args and isinstance(node.args[0], ast.Dict):
                keys += [(node.lineno, key) for key in node.args[0].keys if key is not None]
    return [(line, example) for line, key in keys if (example := _key_example(_resolved(key, names))) is not None]


def foreign_widget_writes(root: Path) -> list[str]:
    """Each write of a widget key by a module other than the one that makes the widget."""
    files = [path for path in app_files(root) if path.is_file()]
    owners = [(pattern, path) for path in files for pattern in widget_keys(path)]
    return sorted(
        f"{path.relative_to(root).as_posix()}:{line} writes {key!r}, a widget key of {owner.relative_to(root)}"
        for path in files
        for line, key in session_state_writes(path)
        for pattern, owner in owners
        if owner != path and re.fullmatch(pattern, key, flags=re.DOTALL)
    )


def test_no_module_writes_the_widget_keys_of_another():
    # Another page's choice goes through ui/handoff.py: the caller records a request, and the page
    # that owns the widgets turns it into their values.
    keys = {key for path in app_files(REPO) if path.is_file() for key in widget_keys(path)}
    assert {"gen_method", "i_model", "style_source", "style_ids", "compare_ids", "i26_.+"} <= keys  # seen
    assert foreign_widget_writes(REPO) == []


def test_the_widget_key_check_finds_a_write_from_another_module(tmp_path: Path):
    (tmp_path / "ui").mkdir()
    (tmp_path / "app_pages").mkdir()
    (tmp_path / "ui" / "inputs.py").write_text(
        "import streamlit as st\n"
        'st.segmented_control("From", ["A"], key="style_source")\n'
        'for style in "ab":\n'
        '    st.checkbox(style, key=f"i26_{style}")\n'
        'st.session_state["style_source"] = "A"  # its own key\n'
    )
    (tmp_path / "app_pages" / "styles.py").write_text(
        "import streamlit as st\n"
        '# st.session_state["style_source"] = "Catalog"\n'
        "ss = st.session_state\n"
        'ss["own"], ss["style_source"] = 1, "Catalog"\n'
        'key = f"i26_{3}"\n'
        "st.session_state.pop(key, None)\n"
        'st.text_input("Own", key="own")\n'
    )
    assert foreign_widget_writes(tmp_path) == [
        "app_pages/styles.py:4 writes 'style_source', a widget key of ui/inputs.py",
        "app_pages/styles.py:6 writes 'i26_\\x00', a widget key of ui/inputs.py",
    ]


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


MAX_MODULE_LINES = 600  # past this a module is asking to be split by job


def long_modules(root: Path, limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    """Python files under ``root``'s code folders (and dashboard.py) longer than ``limit`` lines."""
    files = [
        root / "dashboard.py",
        *(p for folder in (*PACKAGES, "app_pages", "tests") for p in (root / folder).rglob("*.py")),
    ]
    lengths = {path.relative_to(root).as_posix(): len(path.read_text(encoding="utf-8").splitlines()) for path in files}
    return {name: lines for name, lines in sorted(lengths.items()) if lines > limit}


def test_no_module_is_longer_than_600_lines():
    assert long_modules(REPO) == {}


def test_the_length_check_counts_lines_in_every_folder(tmp_path: Path):
    (tmp_path / "dashboard.py").write_text("x = 1\n")
    for folder in (*PACKAGES, "app_pages", "tests"):
        (tmp_path / folder / "deep").mkdir(parents=True)
        (tmp_path / folder / "deep" / "long.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
        (tmp_path / folder / "short.py").write_text("x = 1\n" * MAX_MODULE_LINES)
    assert sorted(long_modules(tmp_path)) == [
        f"{folder}/deep/long.py" for folder in sorted((*PACKAGES, "app_pages", "tests"))
    ]


def test_entry_points_live_in_their_packages_not_beside_the_core():
    # The command line and the benchmarks import the core; nothing in the core imports them, so they
    # live in jaxstyle/cli/ and jaxstyle/bench/ and the top of jaxstyle/ shows only the core.
    top = sorted(path.name for path in (REPO / "jaxstyle").glob("*.py"))
    assert [name for name in top if name.startswith(("bench", "cli", "ray_runner", "runners"))] == []
    for package in ("cli", "bench", "runners"):
        assert (REPO / "jaxstyle" / package / "__init__.py").is_file()

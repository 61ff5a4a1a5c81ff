"""The package's structure: imports go one way (no cycles), modules are not grab bags, chapters import little."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "course_utils"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The course_utils modules a file imports anywhere in it (top level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import paths`
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for neighbour in sorted(graph.get(node, ())):
            if state.get(neighbour) == "open":
                return stack[stack.index(neighbour):] + [neighbour]
            if neighbour not in state and (cycle := visit(neighbour)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_even_through_deferred_imports():
    # A package's __init__ re-exports its modules; a module importing its own package's face is not a cycle.
    graph = {name: {m for m in deps if not (name.startswith(m + ".") and m != "course_utils")}
             for name, deps in import_graph().items()}
    graph = {name: deps - {"course_utils"} for name, deps in graph.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


NOTEBOOKS = PACKAGE.parent / "notebooks"


def course_imports(source: str) -> set[str]:
    """The course_utils modules a cell's code imports (IPython magics and shell lines skipped)."""
    lines = [line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
             for line in source.splitlines()]
    found = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("course_utils"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_utils"):
            found.add(node.module if node.module != "course_utils" else
                      ",".join(sorted(f"course_utils.{alias.name}" for alias in node.names)))
    return found


def chapter_code_cells(path: Path) -> list[str]:
    import nbformat

    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def test_a_chapter_imports_the_course_once_from_at_most_three_modules():
    chapters = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert chapters
    for chapter in chapters:
        importing = [(index, course_imports(source)) for index, source in enumerate(chapter_code_cells(chapter))]
        importing = [(index, modules) for index, modules in importing if modules]
        assert len(importing) == 1, f"{chapter.name}: course_utils is imported in cells {[i for i, _ in importing]}"
        modules = set().union(*(m.split(",") for m in importing[0][1]))
        assert len(modules) <= 3, f"{chapter.name} imports from {sorted(modules)}"


def test_the_import_counter_counts():
    assert course_imports("from course_utils import course\nimport numpy") == {"course_utils.course"}
    assert course_imports("from course_utils.models import Generator\nfrom course_utils import paths, course") == {
        "course_utils.models", "course_utils.course,course_utils.paths"}
    assert course_imports("%pip install x\nimport torch") == set()


# training.py keeps a run's life cycle together (start, resume, save, finish, and the seeds and device
# helpers every trainer needs): 13 functions, one over.
PUBLIC_FUNCTION_LIMIT = {"course_utils.training": 13}


def public_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_")]


def test_no_module_is_a_grab_bag_of_public_functions():
    crowded = {module_name(path): len(public_functions(path)) for path in PACKAGE.rglob("*.py")
               if len(public_functions(path)) > PUBLIC_FUNCTION_LIMIT.get(module_name(path), 12)}
    assert not crowded, f"modules with more public functions than their limit: {crowded}"


def test_the_public_function_counter_counts(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("def a():\n    def inner():\n        pass\n\ndef _hidden():\n    pass\n\nclass C:\n    def m(self):\n        pass\n")
    assert public_functions(source) == ["a"]

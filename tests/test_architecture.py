"""The package's layout: each module imports only public names of the others, and no import cycle exists."""

import ast
from pathlib import Path

import sklearn_id

PACKAGE = Path(sklearn_id.__file__).parent


def _imports():
    """``{module: [(imported module, name or None, line)]}`` for every import of the package, lazy ones included."""
    found = {}
    for path in sorted(PACKAGE.glob("*.py")):
        module = f"sklearn_id.{path.stem}" if path.stem != "__init__" else "sklearn_id"
        edges = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sklearn_id"):
                for alias in node.names:
                    edges.append((node.module, alias.name, node.lineno))
            elif isinstance(node, ast.Import):
                edges += [
                    (alias.name, None, node.lineno) for alias in node.names if alias.name.startswith("sklearn_id")
                ]
        found[module] = edges
    return found


def test_no_module_imports_a_private_name_of_another():
    offences = [
        f"{module}:{line} imports {name} from {source}"
        for module, edges in _imports().items()
        for source, name, line in edges
        if name is not None and name.startswith("_") and source != module
    ]
    assert offences == []


def test_no_import_cycle_even_through_lazy_imports():
    graph = {module: {source for source, _, _ in edges} for module, edges in _imports().items()}
    # The package __init__ only re-exports: an import of "sklearn_id" from inside stands for what it exports.
    exported = graph.pop("sklearn_id")
    graph = {
        module: (targets - {"sklearn_id"}) | (exported if "sklearn_id" in targets else set())
        for module, targets in graph.items()
    }
    cycles = []

    def visit(module, path):
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in done:
                visit(target, path + [target])
        done.add(module)

    done = set()
    for module in sorted(graph):
        visit(module, [module])
    assert cycles == []


def test_the_duplicate_policy_is_written_once():
    # Only _neighbors collapses duplicates; everything else goes through its distinct searches.
    callers = {
        path.stem
        for path in PACKAGE.glob("*.py")
        if "collapse_duplicates(" in path.read_text() and path.stem != "_neighbors"
    }
    assert callers == set()
    source = (PACKAGE / "_neighbors.py").read_text()
    assert source.count("def collapse_duplicates(") == 1
    assert source.count("= collapse_duplicates(") == 1

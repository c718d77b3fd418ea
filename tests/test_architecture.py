"""The package's layout: each module imports only public names of the others, and no import cycle exists."""

import ast
import re
from pathlib import Path

import sklearn_id

PACKAGE = Path(sklearn_id.__file__).parent


def _module_name(path):
    """The dotted name of a module of the package, subpackages included (``sklearn_id._neighbors._policy``)."""
    parts = ("sklearn_id", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(module):
    """The package a module belongs to: its subpackage's name, or ``sklearn_id`` for a top-level module."""
    return module if (PACKAGE / Path(*module.split(".")[1:]) / "__init__.py").exists() else module.rpartition(".")[0]


def _imports():
    """``{module: [(imported module, name or None, line)]}`` for every import of the package, lazy ones included."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
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


def test_a_subpackage_is_entered_through_its_init():
    # Outside a subpackage, its modules are reached through the names its __init__ re-exports.
    offences = [
        f"{module}:{line} imports {source}"
        for module, edges in _imports().items()
        for source, _, line in edges
        if source.count(".") > 1 and _package_of(source) != _package_of(module) and not module.startswith(source)
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
    # Only the neighbour policy collapses duplicates; everything else goes through its distinct searches.
    callers = {
        _module_name(path)
        for path in PACKAGE.rglob("*.py")
        if "collapse_duplicates(" in path.read_text() and path.parent.name != "_neighbors"
    }
    assert callers == set()
    source = (PACKAGE / "_neighbors" / "_policy.py").read_text()
    assert source.count("def collapse_duplicates(") == 1
    assert source.count("= collapse_duplicates(") == 1


def test_the_backend_is_chosen_in_the_neighbour_package_alone():
    # No branch on the metric or the device outside the neighbour package and the device module; the two
    # exceptions are not a search: scikit-learn's input tags of an estimator, and where a PCA spectrum runs.
    branch = re.compile(r'metric [!=]= "(precomputed|euclidean)"|is_tensor\(|device [!=]= "cpu"')
    allowed = {("sklearn_id._base", "tags.input_tags"), ("sklearn_id._pca", "if is_tensor(X):")}
    offences = [
        f"{_module_name(path)}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent.name != "_neighbors" and path.name != "_device.py"
        for line in path.read_text().splitlines()
        if branch.search(line)
        and not line.strip().startswith(("#", '"', "``"))
        and not any(_module_name(path) == module and fragment in line for module, fragment in allowed)
    ]
    assert offences == []


def _code_lines(source, node):
    """Lines of a function that hold code: no blank lines, comments or docstring."""
    first = node.body[0]
    docstring = set()
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        docstring = set(range(first.lineno, first.end_lineno + 1))
    lines = source.splitlines()[node.lineno - 1 : node.end_lineno]
    return sum(
        1
        for number, line in enumerate(lines, start=node.lineno)
        if line.strip() and not line.strip().startswith("#") and number not in docstring
    )


def _stores_its_parameters(node):
    """An estimator's ``__init__``: ``self.name = name`` for each parameter (scikit-learn's rule), nothing else."""
    return node.name == "__init__" and all(
        isinstance(statement, ast.Assign)
        and isinstance(statement.value, ast.Name)
        and [f"self.{statement.value.id}"] == [ast.unparse(target) for target in statement.targets]
        for statement in node.body
    )


def test_modules_and_functions_stay_small():
    # One idea a module, a screen or so a function; the command line's argparse table is the one long list.
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        if len(source.splitlines()) > 600:
            too_long.append(f"{_module_name(path)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.FunctionDef)
                and node.name != "_parser"
                and not _stores_its_parameters(node)
                and _code_lines(source, node) > 50
            ):
                too_long.append(f"{_module_name(path)}.{node.name}: {_code_lines(source, node)} code lines")
    assert too_long == []

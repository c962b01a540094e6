"""The design checks: what the layout promises a newcomer, each a test that fails when the code drifts.

- no import cycle inside mailgate (imports inside functions count; `if TYPE_CHECKING:` ones do not);
- no module over 400 lines, and half of them under 150;
- SQL text only under mailgate/store/ (statements in string literals, found with `ast`, not in prose);
- one module inserts into `messages`, one writes `tickets.status`;
- the layers contract in pyproject's [tool.importlinter] (lint-imports);
- unit tests start nothing: no sockets, no SQLite, no daemon, no subprocess.

Each checker runs on a tiny made-up package first, broken and whole, so a checker that can no
longer fail is caught here too.
"""

from __future__ import annotations

import ast
import re
import statistics
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

from ..conftest import REPO

PACKAGE = REPO / "mailgate"
UNIT_TESTS = Path(__file__).resolve().parent
MAX_LINES = 400
MEDIAN_LINES = 150


# Statement shapes in upper case, as the code writes SQL; prose ("select the queue") never matches.
SQL = re.compile(
    r"\b(?:SELECT\s+[\w*(]|INSERT\s+(?:OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s"
    r"|PRAGMA\s+\w|CREATE\s+(?:TABLE|INDEX|UNIQUE\s+INDEX|TRIGGER|VIEW)\s|ALTER\s+TABLE\s|DROP\s+(?:TABLE|INDEX)\s)"
)
INSERT_MESSAGES = re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+messages\b")
UPDATE_TICKETS = re.compile(r"\bUPDATE\s+tickets\s+SET\s+(.*?)(?:\bWHERE\b|$)", re.DOTALL)
SETS_STATUS = re.compile(r"(?:^|,)\s*status\s*=")


# --- the checkers --------------------------------------------------------------------------------


def python_files(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def import_cycles(package: str) -> list[list[str]]:
    """Every group of modules that import each other round in a circle (strongly connected, size > 1
    or a module importing itself), by Tarjan's algorithm over grimp's graph."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative: the mailgate graph is deep enough to make recursion a risk on small stacks.
        work: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in edges.get(node, ()):
                        cycles.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(cycles)


def size_problems(root: Path, max_lines: int = MAX_LINES, median: int = MEDIAN_LINES) -> list[str]:
    sizes = {str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines()) for p in python_files(root)}
    problems = [f"{name}: {n} lines (at most {max_lines})" for name, n in sorted(sizes.items()) if n > max_lines]
    middle = statistics.median(sizes.values()) if sizes else 0
    if middle >= median:
        problems.append(f"the median module has {middle:g} lines (under {median} wanted)")
    return problems


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def string_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal but docstrings; an f-string with its fields as `?`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _docstrings(tree)
    skip |= {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else " ? " for v in node.values)
            yield node.lineno, text


def sql_outside_store(root: Path) -> list[str]:
    store = root / "store"
    found = []
    for path in python_files(root):
        if store in path.parents:
            continue
        for line, text in string_literals(path):
            match = SQL.search(text)
            if match:
                found.append(f"{path.relative_to(root)}:{line}: {text.strip()[:60]!r}")
    return sorted(set(found))


def modules_writing(root: Path) -> tuple[set[str], set[str]]:
    """The modules with `INSERT INTO messages`, and those with an UPDATE of tickets that sets status."""
    inserts: set[str] = set()
    statuses: set[str] = set()
    for path in python_files(root):
        name = str(path.relative_to(root))
        for _, text in string_literals(path):
            if INSERT_MESSAGES.search(text):
                inserts.add(name)
            for match in UPDATE_TICKETS.finditer(text):
                if SETS_STATUS.search(match.group(1)):
                    statuses.add(name)
    return inserts, statuses


IO_IMPORTS = ("socket", "subprocess", "sqlite3", "aiosqlite", "smtplib", "aiosmtplib", "aiosmtpd", "imapclient",
              "mailgate.daemon", "mailgate.spool", "mailgate.runners", "mailgate.sources",
              # what opens a database; the store's pure parts (its migration list) are fair game
              "mailgate.store.Store", "mailgate.store.store_for", "mailgate.store.open_store")
IO_FIXTURES = {"sink", "daemon", "make_daemon", "cli"}


def unit_test_io(folder: Path) -> list[str]:
    """Unit tests that import an I/O module or ask for a running part by fixture."""
    found = []
    for path in python_files(folder):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                asked = {a.arg for a in node.args.args} & IO_FIXTURES
                found += [f"{path.name}:{node.lineno}: fixture {a}" for a in sorted(asked)]
            hits = [n for n in names if any(n == m or n.startswith(m + ".") for m in IO_IMPORTS)]
            if hits:
                found.append(f"{path.name}:{node.lineno}: imports {hits[0]}")
    return sorted(set(found))


def lint(config: Path) -> int:
    """lint-imports with this config; 0 when every contract is kept (its report goes to stdout)."""
    return lint_imports(config_filename=str(config), no_cache=True, no_logo=True)


# --- the real tree ---------------------------------------------------------------------------------


def test_no_import_cycle_in_mailgate() -> None:
    assert import_cycles("mailgate") == []


def test_modules_are_small() -> None:
    assert size_problems(PACKAGE) == []


def test_sql_only_in_the_store() -> None:
    assert sql_outside_store(PACKAGE) == []


def test_one_writer_of_messages_and_of_ticket_status() -> None:
    inserts, statuses = modules_writing(PACKAGE)
    assert inserts == {"store/messages.py"}
    assert len(statuses) == 1 and next(iter(statuses)).startswith("store/"), statuses


def test_layers_contract() -> None:
    assert lint(REPO / "pyproject.toml") == 0


def test_pyproject_layers_name_every_package() -> None:
    """The contract lists the layers the layout promises, so a new top-level module must be placed."""
    import tomllib

    settings = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (layers,) = [c for c in settings["contracts"] if c["type"] == "layers"]
    listed = {name.strip() for layer in layers["layers"] for name in re.split(r"[|:]", layer)}
    assert layers.get("exhaustive") is True
    order = [layer.split("|")[0].strip() for layer in layers["layers"]]
    assert order.index("cli") < order.index("daemon") < order.index("pipeline") < order.index("ops")
    assert order.index("ops") < order.index("outgoing") < order.index("store") < order.index("mail")
    assert {"cli", "daemon", "runners", "sources", "pipeline", "ops", "outgoing", "spool", "store", "rules",
            "commands", "mail", "config", "models", "clock"} <= listed


def test_unit_tests_start_nothing() -> None:
    assert unit_test_io(UNIT_TESTS) == []


# --- the checkers on made-up trees -----------------------------------------------------------------


MakePackage = Callable[[dict[str, str]], tuple[str, Path]]


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakePackage:
    """Write a package from {relative path: source} on sys.path; its name is unique per call."""

    def make(files: dict[str, str]) -> tuple[str, Path]:
        name = f"fakegate_{uuid.uuid4().hex[:8]}"
        root = tmp_path / name
        for rel, source in {"__init__.py": "", **files}.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            for folder in path.relative_to(root).parents:
                init = root / folder / "__init__.py"
                if not init.exists():
                    init.write_text("")
            path.write_text(textwrap.dedent(source).replace("PKG", name), encoding="utf-8")
        return name, root

    monkeypatch.syspath_prepend(str(tmp_path))
    return make


def test_cycle_checker_counts_imports_inside_functions(make_package: MakePackage) -> None:
    name, _ = make_package({
        "a.py": "from PKG import b\n",
        "b.py": "def f():\n    from PKG import a\n    return a\n",
        "c.py": "from PKG import a\n",
    })
    assert import_cycles(name) == [[f"{name}.a", f"{name}.b"]]


def test_cycle_checker_tolerates_type_checking_imports(make_package: MakePackage) -> None:
    name, _ = make_package({
        "a.py": "from PKG import b\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from PKG import a\n",
    })
    assert import_cycles(name) == []


def test_size_checker(make_package: MakePackage) -> None:
    _, root = make_package({"small.py": "x = 1\n" * 10, "big.py": "x = 1\n" * 401})
    assert size_problems(root) == ["big.py: 401 lines (at most 400)"]
    _, root = make_package({f"m{i}.py": "x = 1\n" * 200 for i in range(3)})
    assert size_problems(root) == ["the median module has 200 lines (under 150 wanted)"]
    _, root = make_package({"a.py": "x = 1\n" * 400, "b.py": "x = 1\n" * 20, "c.py": "x = 1\n" * 30})
    assert size_problems(root) == []


def test_sql_checker_reads_literals_not_prose(make_package: MakePackage) -> None:
    _, root = make_package({
        "store/tickets.py": 'Q = "SELECT id FROM tickets WHERE number = ?"\n',
        "ops/ok.py": '''\
            """Select the queue from the rules; UPDATE tickets SET status = ? lives in the store."""
            # A comment may say SELECT * FROM tickets.
            WORDS = "select a queue from the list"
            ''',
        "ops/bad.py": '''\
            def f(tx, table):
                tx.run(f"DELETE FROM {table} WHERE id = ?")
                return "INSERT OR IGNORE INTO x (a) VALUES (?)"
            ''',
        "cli/pragma.py": 'P = "PRAGMA user_version"\n',
    })
    found = sql_outside_store(root)
    assert [f.split(":")[0] for f in found] == ["cli/pragma.py", "ops/bad.py", "ops/bad.py"]


def test_writer_checker(make_package: MakePackage) -> None:
    _, root = make_package({
        "store/messages.py": 'Q = """INSERT INTO messages (id) VALUES (?)"""\n',
        "store/tickets.py": 'Q = "UPDATE tickets SET updated_at = ?, status = ? WHERE id = ?"\n',
        "store/other.py": 'Q = "UPDATE tickets SET priority = ? WHERE status = ?"\n',
    })
    assert modules_writing(root) == ({"store/messages.py"}, {"store/tickets.py"})
    _, root = make_package({
        "a.py": 'Q = "INSERT INTO messages (id) VALUES (?)"\n',
        "b.py": 'Q = "INSERT OR IGNORE INTO messages (id) VALUES (?)"\nS = f"UPDATE tickets SET status = ?, x = {1}"\n',
        "c.py": 'S = "UPDATE tickets\\n   SET status = ? WHERE id = ?"\n',
    })
    assert modules_writing(root) == ({"a.py", "b.py"}, {"b.py", "c.py"})


def test_unit_io_checker(tmp_path: Path) -> None:
    (tmp_path / "test_pure.py").write_text("from mailgate.mail.parse import parse\n\ndef test_x(config):\n    pass\n")
    assert unit_test_io(tmp_path) == []
    (tmp_path / "test_io.py").write_text(
        "import socket\nfrom mailgate.store import store_for\nfrom mailgate import daemon\n\nasync def test_y(sink):\n    pass\n"
    )
    assert unit_test_io(tmp_path) == [
        "test_io.py:1: imports socket", "test_io.py:2: imports mailgate.store.store_for",
        "test_io.py:3: imports mailgate.daemon", "test_io.py:5: fixture sink",
    ]


def _layers_config(root: Path, name: str) -> Path:
    config = root.parent / f"{name}.toml"
    config.write_text(textwrap.dedent(f"""\
        [tool.importlinter]
        root_package = "{name}"

        [[tool.importlinter.contracts]]
        name = "layers"
        type = "layers"
        containers = ["{name}"]
        layers = ["cli", "ops", "store", "mail"]
        exhaustive = true
        """))
    return config


def test_layers_checker(make_package: MakePackage, capsys: pytest.CaptureFixture[str]) -> None:
    name, root = make_package({
        "cli.py": "from PKG import ops\n",
        "ops.py": "from PKG import store\n",
        "store.py": "from PKG import mail\n",
        "mail.py": "",
    })
    assert lint(_layers_config(root, name)) == 0
    name, root = make_package({
        "cli.py": "",
        "ops.py": "",
        "store.py": "def f():\n    from PKG import ops\n",  # upward, inside a function: still counted
        "mail.py": "",
    })
    assert lint(_layers_config(root, name)) == 1
    assert f"{name}.store -> {name}.ops" in capsys.readouterr().out

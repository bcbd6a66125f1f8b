"""The layers import only downward, and the packages form no cycle.

Every import counts, the lazy ones inside functions too: a lazy import is still a
dependency, only a later one. Layer by layer, bottom first (docs/architecture.md):
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("core.base",),  # clock, errors, units, DER, files, secrets, children, DNS names
    ("core.config", "core.store"),
    # the signer, codecs and encoders, CA material, the DNS client
    # and the primary's client of the remote perspectives
    ("signer", "ocsp", "crl", "core.ca", "core.dns", "core.mpic"),
    # policy, engine, keys, ACME RA, pushed events, domain validation
    (
        "core.issuance",
        "core.licenses",
        "core.access",
        "core.acme",
        "core.notify",
        "core.ct",
        "core.replication",
        "core.dcv",
    ),
    # router, RPC, admin and licence handlers; a remote perspective's checks and service
    ("core.api", "core.perspective"),
    ("core.cmd",),  # command groups, wiring, serve
    ("bench",),
    ("core.main",),  # the entry point: builds the parser from every command group
)
TOP_PACKAGES = ("core", "signer", "ocsp", "crl", "bench")

# Modules that must stay free of I/O frameworks: protocol logic and policy, tested
# without sockets, stores or tokens.
PURE = (
    "core.base.der",
    "core.base.dnsnames",
    "core.base.reasons",
    "core.base.units",
    "core.issuance.policy",
    "core.licenses.policy",
    "core.access.roles",
    "core.access.ratelimit",
    "core.notify.signing",
    "core.ct.sct",
    "core.ct.race",
    "core.ct.policy",
    "core.ct.precert",
    "ocsp.status.redis_layout",
    "core.notify.retry",
    "core.notify.targets",
    "core.acme.jws",
    "core.acme.nonces",
    "core.acme.problems",
    "core.acme.messages",
    "crl.encoder",
    "crl.schedule",
    "ocsp.codec",
    "ocsp.status.connection",
    "ocsp.status.http",
    "ocsp.answers",
    "core.api.http1",
    "core.api.http1_head",
    "core.api.http_errors",
    "core.base.netaddr",
    "core.dns.caa",
    "core.dns.wire",
    "core.dcv.methods",
    "core.mpic.quorum",
    "core.mpic.messages",
)
IO_MODULES = (
    "trio",
    "lmdb",
    "pkcs11",
    "asyncio",
    "uvloop",
    "socket",
    "ssl",
    "psycopg",
    "psycopg_pool",
    "redis",
    "coredis",
    "httpx",
    "dns",  # dnspython
    "smtplib",
    "aiosmtplib",
    "aiosmtpd",
    "subprocess",
)


def unit_of(module: str) -> str:
    """The package a module belongs to for layering: the longest LAYERS name it is in."""
    best = ""
    for name in itertools.chain.from_iterable(LAYERS):
        if (module == name or module.startswith(name + ".")) and len(name) > len(best):
            best = name
    if not best:
        raise LookupError(f"{module} is in no layer: add it to tests/test_layering.py")
    return best


def layer_of(module: str) -> int:
    unit = unit_of(module)
    return next(i for i, names in enumerate(LAYERS) if unit in names)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> Iterable[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    me = module_name(root, path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            # `from core import main` imports the module core.main
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def project_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def check(root: Path, packages: tuple[str, ...] = TOP_PACKAGES) -> list[str]:
    """Every upward import, every cycle (of packages, and of modules inside one) and
    every I/O import in a pure module."""
    modules = project_modules(root, packages)
    problems: list[str] = []
    edges: dict[str, set[str]] = {}
    module_edges: dict[str, set[str]] = {}
    for mod, path in modules.items():
        if mod in packages:  # the top-level package markers hold nothing
            continue
        mine = unit_of(mod)
        for line, target in imports_of(root, path):
            top = target.split(".")[0]
            if top in IO_MODULES and any(mod == p or mod.startswith(p + ".") for p in PURE):
                problems.append(f"{path.relative_to(root)}:{line}: pure module imports {target}")
            if target not in modules or target in packages:
                continue
            if target != mod:
                module_edges.setdefault(mod, set()).add(target)
            theirs = unit_of(target)
            if layer_of(target) > layer_of(mod):
                problems.append(
                    f"{path.relative_to(root)}:{line}: {mod} (layer {layer_of(mod)}) imports"
                    f" {target} (layer {layer_of(target)}) upward"
                )
            if theirs != mine:
                edges.setdefault(mine, set()).add(theirs)
    for group in cycles(edges):
        problems.append(f"packages that import each other in a cycle: {', '.join(group)}")
    for group in cycles(module_edges):
        problems.append(f"modules that import each other in a cycle: {', '.join(group)}")
    return problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each group of packages that import each other round a cycle (Tarjan's strongly
    connected components of more than one package)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_layers_import_only_downward_and_packages_form_no_cycle() -> None:
    assert check(ROOT) == []


def test_every_product_module_is_in_a_layer() -> None:
    for mod in project_modules(ROOT, TOP_PACKAGES):
        if mod not in TOP_PACKAGES:
            unit_of(mod)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for pkg in TOP_PACKAGES:
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").touch()
    return tmp_path


def test_an_upward_import_is_found_even_inside_a_function(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/base/__init__.py": "",
            "core/base/clock.py": "def now():\n    from core.api import router\n",
            "core/api/__init__.py": "",
            "core/api/router.py": "from core.base import clock\n",
        },
    )
    problems = check(root)
    assert any("core.base.clock (layer 0) imports core.api.router (layer 4)" in p for p in problems)


def test_a_cycle_between_packages_of_one_layer_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ocsp/codec.py": "import crl.encoder\n",
            "crl/encoder.py": "from ocsp import presign\n",
            "ocsp/presign.py": "",
        },
    )
    assert check(root) == ["packages that import each other in a cycle: crl, ocsp"]


def test_a_cycle_of_modules_inside_one_folder_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/api/__init__.py": "",
            "core/api/auth.py": "from core.api.router import HttpError\n",
            "core/api/router.py": "def f():\n    from core.api import auth\n",
        },
    )
    assert check(root) == [
        "modules that import each other in a cycle: core.api.auth, core.api.router"
    ]


@pytest.mark.parametrize("module", ["trio", "lmdb", "pkcs11.util", "redis", "psycopg", "httpx",
                                    "dns.asyncresolver", "smtplib"])  # fmt: skip
def test_a_pure_module_importing_io_is_found(tmp_path: Path, module: str) -> None:
    root = _tree(tmp_path, {"ocsp/codec.py": f"import {module}\n"})
    assert check(root) == [f"ocsp/codec.py:1: pure module imports {module}"]


MAX_LINES = 500


def test_product_code_is_formatted_as_ruff_would_with_no_exemption() -> None:
    """The 500-line cap counts formatted lines: no statement of product code keeps a
    layout of its own (`# fmt: skip`, `# fmt: off`)."""
    exempt = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in project_modules(ROOT, TOP_PACKAGES).values()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"#\s*fmt:\s*(skip|off)", line)
    ]
    assert exempt == []


def test_no_product_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in project_modules(ROOT, TOP_PACKAGES).values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}

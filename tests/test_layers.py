"""Imports point down the stack (STYLE.md, "Which way imports go"), read from the source itself.

Every import of every application module is checked, those inside functions and under
TYPE_CHECKING included: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What each layer may import of ours, besides itself. A dotted entry allows that module only.
# Written from STYLE.md, not read from the code: app.py -> web -> services -> (flows, models,
# gateway) -> infra and config; workers -> services and below; never the other way.
ALLOWED: dict[str, frozenset[str]] = {
    "config": frozenset(),  # settings from the environment: below everything, imports nothing of ours
    "infra": frozenset({"config"}),  # crypto, Redis connection and key names, spool, health
    "flows": frozenset({"infra", "config"}),  # the engine does no I/O: no web, workers, gateway, services
    "models": frozenset({"infra", "config"}),
    "gateway": frozenset({"infra", "config"}),  # speaks messages, not records or menus
    "services": frozenset({"flows", "models", "gateway", "infra", "config"}),
    "workers": frozenset({"services", "flows", "models", "gateway", "infra", "config"}),  # never web
    "web": frozenset({"services", "flows", "models", "gateway", "infra", "config"}),  # never workers
    "migrations": frozenset(),  # a revision is frozen: it imports no application module
}
# Entry points wire everything together; tests and benchmarks drive it from outside.
ENTRY_POINTS = frozenset({"app.py", "cli.py", "gunicorn.conf.py"})
OUTSIDE = frozenset({"tests", "bench"})
# Known imports against the table, each with why it stays.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("migrations/env.py", "models"): "Alembic's environment, not a revision: autogenerate compares "
    "the models' metadata with the database",
}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository, e.g. "web/sms.py"
    line: int
    target: str  # dotted, e.g. "infra.queues.enqueue_sms"


def our_packages(root: Path) -> set[str]:
    """Top-level names that are ours: the folders and modules holding Python code."""
    names = {p.stem for p in root.glob("*.py") if "." not in p.stem}
    folders = (p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return names | {p.name for p in folders if any(p.rglob("*.py"))}


def application_files(root: Path) -> list[Path]:
    files = list(root.glob("*.py"))
    for folder in root.iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and folder.name not in OUTSIDE:
            files += folder.rglob("*.py")
    return sorted(files)


def imports_of(path: Path, root: Path, ours: set[str]) -> list[Import]:
    """Every import of ours in `path`; `from a import b` counts as `a.b` (b may be a module)."""
    relative = path.relative_to(root).as_posix()
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{relative}:{node.lineno}: a relative import; write it absolute"
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [Import(relative, node.lineno, t) for t in targets if t.split(".")[0] in ours]
    return found


def layer_of(relative: str) -> str | None:
    """The layer a file belongs to; None for an entry point."""
    if relative in ENTRY_POINTS:
        return None
    layer = relative.split("/")[0].removesuffix(".py")
    assert layer in ALLOWED, f"{relative}: which layer is it? add it to ALLOWED (or ENTRY_POINTS)"
    return layer


def allowed(layer: str, target: str) -> bool:
    if target.split(".")[0] == layer:
        return True
    return any(target == entry or target.startswith(entry + ".") for entry in ALLOWED[layer])


def excused(imp: Import) -> bool:
    return any(imp.path == p and (imp.target == t or imp.target.startswith(t + ".")) for p, t in EXCEPTIONS)


def upward_imports(root: Path) -> list[str]:
    """Every import in the tree at `root` that the table does not allow, as `path:line: ...`."""
    ours = our_packages(root)
    wrong = []
    for path in application_files(root):
        layer = layer_of(path.relative_to(root).as_posix())
        if layer is None:
            continue
        wrong += [
            f"{imp.path}:{imp.line}: {layer} imports {imp.target}"
            for imp in imports_of(path, root, ours)
            if not allowed(layer, imp.target) and not excused(imp)
        ]
    return wrong


def test_every_import_points_down_the_stack() -> None:
    wrong = upward_imports(ROOT)
    assert wrong == [], "imports pointing up the stack (see STYLE.md):\n" + "\n".join(wrong)


def test_the_check_reads_every_layer_of_the_real_tree() -> None:
    """It cannot pass by reading nothing: every layer has files, and their imports are seen."""
    layers = {layer_of(p.relative_to(ROOT).as_posix()) for p in application_files(ROOT)}
    assert layers - {None} == set(ALLOWED)
    ours = our_packages(ROOT)
    assert {"web", "workers", "services", "models", "infra", "flows", "gateway", "config"} <= ours
    assert "services.inbound.receive" in {i.target for i in imports_of(ROOT / "web" / "sms.py", ROOT, ours)}


def tree(root: Path, path: str, source: str) -> Path:
    """A small repository: every layer present, and one file of `source` at `path`."""
    for layer in ALLOWED:
        if layer == "config":
            (root / "config.py").write_text("")
        else:
            (root / layer).mkdir(exist_ok=True)
            (root / layer / "__init__.py").write_text("")
    (root / path).parent.mkdir(exist_ok=True)
    (root / path).write_text(f"import json\n\n\ndef later() -> None:\n    {source}\n")
    return root


@pytest.mark.parametrize(
    ("path", "source", "target"),
    [
        ("models/db.py", "from services.sealing import Keyring", "services.sealing.Keyring"),
        ("workers/spool.py", "from web.ussd_store import UssdStore", "web.ussd_store.UssdStore"),
        ("workers/spool.py", "import web.ussd_store", "web.ussd_store"),
        ("web/sms.py", "from workers import sms", "workers.sms"),
        ("web/sms.py", "from workers.queues import enqueue_sms", "workers.queues.enqueue_sms"),
        ("services/converse.py", "from web.ussd_store import UssdStore", "web.ussd_store.UssdStore"),
        ("flows/engine.py", "from models.base import utcnow", "models.base.utcnow"),
        ("gateway/base.py", "from services import inbound", "services.inbound"),
        ("infra/spool.py", "from models.base import utcnow", "models.base.utcnow"),
        ("config.py", "from infra import keys", "infra.keys"),
        ("migrations/0099.py", "from config import load_settings", "config.load_settings"),
    ],
)
def test_an_import_pointing_up_is_reported(tmp_path: Path, path: str, source: str, target: str) -> None:
    assert upward_imports(tree(tmp_path, path, source)) == [f"{path}:5: {layer_of(path)} imports {target}"]


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("web/sms.py", "from infra.queues import enqueue_sms"),
        ("web/sms.py", "from infra import queues"),
        ("workers/spool.py", "from services.inbound import receive"),
        ("models/db.py", "from infra.sealing import Keyring"),
        ("services/referrals.py", "from gateway.segments import count"),
        ("infra/keys.py", "from infra import sealing"),
        ("app.py", "from web import ussd"),
    ],
)
def test_an_import_pointing_down_is_allowed(tmp_path: Path, path: str, source: str) -> None:
    assert upward_imports(tree(tmp_path, path, source)) == []


def test_the_apps_collaborators_are_reached_through_the_typed_object_only() -> None:
    """`web.context.sira()` is the one place that looks the collaborators up by key."""
    root = Path(__file__).resolve().parent.parent
    lookups = [
        f"{path.relative_to(root)}:{n}"
        for path in [*application_files(root), *root.glob("tests/**/*.py"), *root.glob("bench/*.py")]
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if 'extensions["sira' in line and path.name != "test_layers.py"
    ]
    assert lookups == []

"""The faces (the CLI and the gateway) use only the router's public API: no private member of another
object, no private name imported from the core. What a face needs that the API lacks goes into the API."""

from __future__ import annotations

import ast
from pathlib import Path

import llm_router

CORE = Path(llm_router.__file__).parent
FACES = [CORE / "cli.py", *sorted((CORE / "gateway").glob("*.py"))]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(path: Path) -> list[str]:
    """``file:line: what`` for each private member read off another object, or private name imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue  # the face's own members
            found.append(f"{path.name}:{node.lineno}: .{node.attr} of {ast.unparse(owner)}")
        elif isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("llm_router")):
            found += [f"{path.name}:{node.lineno}: imports {a.name}" for a in node.names if _private(a.name)]
            module = node.module or ""
            if any(_private(part) for part in module.split(".")):
                found.append(f"{path.name}:{node.lineno}: imports from private module {module}")
    return found


def test_faces_touch_no_private_member_of_the_router() -> None:
    assert [f.name for f in FACES][:2] == ["cli.py", "__init__.py"]
    problems = [p for face in FACES for p in private_uses(face)]
    assert problems == []


def test_the_check_finds_a_private_access(tmp_path: Path) -> None:
    face = tmp_path / "face.py"
    face.write_text(
        "from llm_router.router import _request_error\n"
        "async def go(router, request):\n"
        "    self_like = router\n"
        "    return await self_like._aroute(request)\n",
        encoding="utf-8",
    )
    assert private_uses(face) == ["face.py:1: imports _request_error", "face.py:4: ._aroute of self_like"]


def test_the_gateway_does_not_import_the_cli() -> None:
    for path in sorted((CORE / "gateway").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = [("." * n.level) + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        ]
        assert not [m for m in modules if m in ("..cli", "llm_router.cli")], path.name

"""The web app's committed build (core/src/llm_router/gateway/static) is the build of web/ as it is now.

`nox -s web` builds web/ and records in static/BUILD-SOURCE.json a hash of the sources it built from and of each
built file (web/scripts/stamp.mjs). These tests recompute both without Node: editing web/ without rebuilding, or
editing the build by hand, fails here. Also: the first load stays under the JavaScript budget, and nothing in
the build loads from elsewhere.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
STATIC = ROOT / "core" / "src" / "llm_router" / "gateway" / "static"
ROOT_FILES = ["index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"]
DIRS = ["src", "public", "scripts"]
FIRST_LOAD_BUDGET = 300 * 1024  # bytes of JavaScript, gzip-compressed (issue #14)


def digest(base: Path, files: list[Path]) -> str:
    """What stamp.mjs computes: sha256 over sorted `relative path NUL sha256(text, LF line ends) LF` lines."""
    lines = []
    for rel in sorted(f.relative_to(base).as_posix() for f in files):
        text = (base / rel).read_bytes().decode("utf-8").replace("\r\n", "\n")
        lines.append(f"{rel}\0{hashlib.sha256(text.encode()).hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def sources() -> list[Path]:
    files = [WEB / f for f in ROOT_FILES]
    for d in DIRS:
        files += [p for p in (WEB / d).rglob("*") if p.is_file()]
    return files


def stamp() -> dict[str, object]:
    return json.loads((STATIC / "BUILD-SOURCE.json").read_text(encoding="utf-8"))


def built() -> list[Path]:
    return [p for p in STATIC.rglob("*") if p.is_file() and p.name != "BUILD-SOURCE.json"]


def test_committed_build_matches_the_web_sources() -> None:
    assert stamp()["sources_sha256"] == digest(WEB, sources()), (
        "web/ changed since the committed build: run `nox -s web` and commit core/src/llm_router/gateway/static"
    )


def test_committed_build_is_what_the_build_wrote() -> None:
    recorded = stamp()
    assert recorded["files"] == sorted(p.relative_to(STATIC).as_posix() for p in built())
    assert recorded["build_sha256"] == digest(STATIC, built()), "the files in gateway/static were edited by hand"


def test_the_stale_check_notices_a_change(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.ts").write_text("export const a = 1;\n")
    before = digest(tmp_path, [tmp_path / "src" / "a.ts"])
    (tmp_path / "src" / "a.ts").write_text("export const a = 2;\n")
    assert digest(tmp_path, [tmp_path / "src" / "a.ts"]) != before


def _scripts(html: str) -> list[str]:
    return re.findall(r'<script[^>]+src="(/[^"]+\.js)"', html) + re.findall(
        r'<link[^>]+rel="modulepreload"[^>]+href="(/[^"]+\.js)"', html
    )


def test_first_load_javascript_is_under_budget() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    entry = _scripts(html)
    assert entry, "index.html loads no script"
    total = sum(len(gzip.compress((STATIC / p.lstrip("/")).read_bytes(), 9)) for p in entry)
    assert total < FIRST_LOAD_BUDGET
    # the dashboard's chunk (and its chart library) is loaded only on /dashboard, not on the first load
    every = sum(len(gzip.compress(p.read_bytes(), 9)) for p in built() if p.suffix == ".js")
    assert every < FIRST_LOAD_BUDGET and every > total


@pytest.mark.parametrize("suffix", [".html", ".js", ".css"])
def test_build_loads_nothing_from_elsewhere(suffix: str) -> None:
    for path in (p for p in built() if p.suffix == suffix):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text), path
        assert "@import url(" not in text and "fonts.googleapis" not in text, path
        if suffix == ".html":
            assert not re.search(r"<script>(?!</script>)|\son[a-z]+=|style=", text), "inline script or style"

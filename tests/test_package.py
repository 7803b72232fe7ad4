"""The package's public face and the direction of its dependencies."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = {
    "securerag.authz": {
        "MAX_ROLE_DEPTH",
        "Authorizer",
        "CasbinDecider",
        "Grants",
        "Permission",
        "PolicyLine",
        "ReadFilter",
        "RoleGrant",
        "TenantPolicy",
        "add_lines",
        "admin_transaction",
        "apply_read_filter",
        "authorize_admin",
        "build_policy",
        "compile_read_filter",
        "glob_to_like",
        "list_lines",
        "parse_policy",
        "remove_lines",
    },
    "securerag.ingestion": {
        "Chunk",
        "Classification",
        "DocumentInput",
        "Finding",
        "HtmlText",
        "IngestedDocument",
        "Ingestor",
        "PreparedDocument",
        "RuleScanner",
        "InjectionScanner",
        "SentenceTransformerEmbedder",
        "Skipped",
        "SourceDocument",
        "bundled_model_path",
        "classify",
        "detect",
        "extract_html",
        "iter_files",
        "load_file",
        "split_text",
    },
    "securerag": {"Principal", "SecureRetriever"},
    "securerag.retrieval": {
        "AssembledContext",
        "ChunkHit",
        "RetrievalResult",
        "Retriever",
        "SearchResult",
        "SearchTuning",
        "TokenCounter",
        "VectorSearch",
        "assemble_context",
        "mask_pii",
    },
    "securerag.db": {
        "APP_ROLE",
        "Access",
        "Database",
        "InitReport",
        "initialize",
        "open_database",
        "set_settings",
        "tenant_transaction",
    },
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_are_pinned(module: str) -> None:
    """Each package exports exactly its documented names."""
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert hasattr(mod, name)


def test_no_generic_top_level_packages_installed(tmp_path: Path) -> None:
    """`authz`, `retrieval` and `ingestion` are not importable outside the repository."""
    names = "('authz', 'retrieval', 'ingestion', 'migrations')"
    code = f"import importlib.util as u; print([n for n in {names} if u.find_spec(n)])"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    assert importlib.util.find_spec("securerag.authz") is not None


def test_console_script_and_typing_marker() -> None:
    """The `securerag` console script is installed and the package ships py.typed."""
    assert shutil.which("securerag", path=str(Path(sys.executable).parent)) is not None
    assert (ROOT / "securerag" / "py.typed").exists()


def _imports(where: Path) -> set[str]:
    """Every module imported by a file, or by every file under a folder."""
    names: set[str] = set()
    for path in where.rglob("*.py") if where.is_dir() else [where]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return names


def test_authz_never_imports_retrieval_or_ingestion() -> None:
    """Dependencies point one way: authz knows nothing of retrieval or ingestion."""
    assert not {
        n for n in _imports(ROOT / "authz") if n.startswith(("securerag.retrieval", "securerag.ingestion"))
    }


def test_ingestion_never_imports_authz_or_retrieval() -> None:
    """Ingestion depends on the core only."""
    assert not {
        n for n in _imports(ROOT / "ingestion") if n.startswith(("securerag.retrieval", "securerag.authz"))
    }


@pytest.mark.parametrize(
    "module",
    ["config", "errors", "models", "protocols", "audit", "memory", "tenants", "apikeys", "crypto", "db"],
)
def test_core_imports_none_of_the_layers(module: str) -> None:
    """The core (everything but the front doors) imports none of ingestion, authz, retrieval."""
    path = ROOT / "securerag" / module
    imports = _imports(path if path.is_dir() else path.with_suffix(".py"))
    layers = ("securerag.ingestion", "securerag.authz", "securerag.retrieval")
    assert not {n for n in imports if n.startswith(layers)}

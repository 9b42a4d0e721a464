from __future__ import annotations

from pathlib import Path

from services.api.openapi_export import render_openapi

ROOT = Path(__file__).resolve().parent.parent


def test_openapi_yaml_matches_the_app() -> None:
    """openapi.yaml is the contract: regenerate it with `make openapi` when the API changes."""
    assert (ROOT / "openapi.yaml").read_text() == render_openapi()


def test_every_v1_operation_documents_problem_json_errors() -> None:
    import yaml

    document = yaml.safe_load(render_openapi())
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
    ]
    assert operations
    for path, method, operation in operations:
        for status in ("401", "422"):
            content = operation["responses"].get(status, {}).get("content", {})
            assert "application/problem+json" in content, f"{method} {path} {status}"

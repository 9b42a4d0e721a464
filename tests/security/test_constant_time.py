"""Every compare of a secret, signature or token is constant-time (issue 14: sender authentication).

Timing cannot be asserted in a unit test, so this reads the code: no `==` / `!=` between two computed values
where one names a signature, digest, MAC, token, secret or password, anywhere in services/ or shared/. Such
compares go through `hmac.compare_digest` (services/api/intake/signatures.py `_eq`, shared/signing.py,
services/api/deps.py). A lookup of a stored hash of a secret (`ApiKey.key_hash == hash_secret(key)`) is SQL
on a preimage-resistant digest and is allowed.
"""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

SECRETISH = re.compile(r"signature|digest|(^|_)mac($|_)|token|secret|expected|password|api_key", re.IGNORECASE)
STORED_HASH = re.compile(r"_hash$")


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call | ast.Subscript):
        return _name(node.func if isinstance(node, ast.Call) else node.value)
    return None


def _plain_compares_of_secrets(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        sides = [node.left, *node.comparators]
        if any(isinstance(side, ast.Constant) for side in sides):
            continue  # a scheme name, an empty string, a literal: nothing secret on either side
        names = [_name(side) or "" for side in sides]
        if any(STORED_HASH.search(name) for name in names):
            continue
        if any(SECRETISH.search(name) for name in names):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_check_finds_a_plain_compare() -> None:
    assert _plain_compares_of_secrets("ok = expected == signature\nif hmac_token != given: pass\n") != []
    assert _plain_compares_of_secrets("ok = hmac.compare_digest(expected, signature)\nx = scheme != 'basic'\n") == []


def test_no_secret_is_compared_with_a_plain_equality() -> None:
    offenders = []
    for folder in ("services", "shared"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, code in _plain_compares_of_secrets(path.read_text()):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {code}")
    assert not offenders, "use hmac.compare_digest:\n" + "\n".join(offenders)

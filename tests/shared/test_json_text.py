"""JSONB values are written with orjson, and with json.dumps for what orjson refuses: the stored value is the same."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import json_text

VALUES: list[Any] = [
    {"name": "Zoë “Z” O'Neil", "tab": "a\tb", "nested": [1, 2.5, None, True, {"k": "\u2028"}]},
    {"big": 2**70, "negative": -(2**65)},  # past 64 bits: orjson refuses, json.dumps writes them
    {1: "int key", "2": "str key"},  # a key that is no string: json.dumps makes it "1"
    ["\U0001f3e0 home", 1e-7, 12345678901234567890],
]


@pytest.mark.parametrize("value", VALUES)
def test_the_text_parses_back_to_what_json_dumps_would_have_stored(value: Any) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize("value", VALUES)
async def test_postgresql_stores_the_same_jsonb_from_either_spelling(engine: AsyncEngine, value: Any) -> None:
    async with engine.connect() as connection:
        same = await connection.scalar(
            text("SELECT CAST(:ours AS jsonb) = CAST(:stdlib AS jsonb)"),
            {"ours": json_text(value), "stdlib": json.dumps(value)},
        )
    assert same is True


def test_what_neither_can_write_is_still_refused() -> None:
    with pytest.raises(TypeError):
        json_text({"value": object()})

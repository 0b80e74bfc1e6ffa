"""JSON Schemas for the bodies the lean handlers validate without pydantic.

Each file is generated from the pydantic model of the same name (`make schemas`), and a
test fails if the two drift, so the contract is still written once, in runstop.models.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from runstop.errors import InvalidBody


@cache
def _compiled(name: str) -> Callable[[Any], Any]:
    # Compiled once per process: fastjsonschema.validate() would recompile on every call.
    # A plain path: importlib.resources would add its own import to the cancel path's cold start.
    schema = json.loads((Path(__file__).parent / f"{name}.json").read_text())
    return fastjsonschema.compile(schema)


def validate(name: str, data: Any) -> Any:
    """Validate `data` against schema `name`; InvalidBody (422) says where it is wrong."""
    try:
        return _compiled(name)(data)
    except fastjsonschema.JsonSchemaValueException as error:
        loc = ["body", *error.path[1:]] if error.path else ["body"]
        raise InvalidBody(error.message, [{"loc": loc, "msg": error.message, "type": error.rule or ""}]) from None

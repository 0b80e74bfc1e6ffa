"""Generated artifacts of the contract in runstop.models: the lean handlers' JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

from runstop_dev.template import REPO_ROOT

SCHEMA_DIR = REPO_ROOT / "layers" / "runstop" / "runstop" / "schemas"


def schema_documents() -> dict[Path, str]:
    """Schema file -> the text it must hold, from the pydantic models."""
    from runstop.models import CancelRequest

    models = {"cancel_request": CancelRequest}
    return {
        SCHEMA_DIR / f"{name}.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in models.items()
    }


def write_schemas() -> list[Path]:
    written = []
    for path, text in schema_documents().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written

"""Validate compose.yaml against the Compose specification's JSON schema (deploy/compose-spec.json,
shipped because CI has no internet). Exit 1 listing every violation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    schema = json.loads((ROOT / "deploy" / "compose-spec.json").read_text())
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    for error in errors:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        print(f"compose.yaml: {where}: {error.message}", file=sys.stderr)
    if not errors:
        print(f"compose.yaml: valid ({len(document['services'])} services)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

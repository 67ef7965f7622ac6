"""`tradectl schema [--out PATH]`: the JSON Schema of the rule language."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tradectl.schemas.models import json_schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        description="Print the JSON Schema of one rule file (for editors and check-jsonschema).",
    )
    parser.add_argument("--out", type=Path, help="write to this file instead of standard output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.out is None:
        print(text, end="")
    else:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"tradectl schema: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
            return 1
        print(f"wrote {args.out}")
    return 0

"""Writes the REST API's OpenAPI document, as `GET /api/openapi.json` serves it, to the file named.

Run from the repository root with the project's interpreter: `.venv/bin/python frontend/scripts/export_openapi.py OUT`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    """Imports the app (no AWS call, no environment needed) and writes its document as stable JSON."""
    if len(argv) != 1:
        print("usage: export_openapi.py OUT.json", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from app import api
    from chalicelib import openapi

    text = json.dumps(openapi.document(api.operations), indent=2, ensure_ascii=False) + "\n"
    Path(argv[0]).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

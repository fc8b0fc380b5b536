#!/usr/bin/env python3
"""Writes docs/configuration.md from the configuration parser's key table.

    scripts/config-reference.py           rewrite docs/configuration.md
    scripts/config-reference.py --check   exit 1 (naming the fix) when the file is out of date

Needs the ``kafka_llm`` package (``make install``): the table lives in the native core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kafka_llm.config import reference_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = reference_markdown()
    if args.check:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run scripts/config-reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Rewrite the table of docs/options.md from the option registry (strategies/options.py's REGISTRY).

    python -m scripts.docs.options            # rewrites the table in docs/options.md, the prose around it kept
    python -m scripts.docs.options --check    # writes nothing: exit 1 if the page's table is out of date

The table is `minigpt.views.text.options_table(REGISTRY)`; tests/strategies/test_options_registry.py checks that
the page holds it, so a new or changed option fails that test until this has been run.
"""

import argparse
import sys
from pathlib import Path

from minigpt.strategies.options import REGISTRY
from minigpt.views.text import options_table

PAGE = Path(__file__).resolve().parents[2] / "docs" / "options.md"
HEADER = "| group | flag | Python name | default | what it does |"


def with_table(page: str, table: list[str]) -> str:
    """The page with its table (from the header line to the first blank line after it) replaced by `table`."""
    lines = page.split("\n")
    start = lines.index(HEADER)
    end = lines.index("", start)
    return "\n".join(lines[:start] + table + lines[end:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the table is out of date")
    args = parser.parse_args()
    page = PAGE.read_text()
    new = with_table(page, options_table(REGISTRY))
    if args.check:
        sys.exit(0 if new == page else 1)
    PAGE.write_text(new)
    print(f"wrote {PAGE}" if new != page else f"{PAGE} is up to date")


if __name__ == "__main__":
    main()

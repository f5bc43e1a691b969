"""Rewrite the README's tool table (between the tools:start/end markers) from the live registry."""

from __future__ import annotations

import sys
from pathlib import Path

from quantdesk.server.registry import ToolRegistry, discover_tools

README = Path(__file__).resolve().parent.parent / "README.md"


def table() -> str:
    rows = ["| tool | scope | what it does |", "|---|---|---|"]
    for entry in discover_tools(ToolRegistry()).list_tools():
        first = entry.description.split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        rows.append(f"| `{entry.name}` | {entry.scope} | {first} |")
    return "\n".join(rows)


def main() -> int:
    text = README.read_text()
    head, rest = text.split("<!-- tools:start -->")
    _, tail = rest.split("<!-- tools:end -->")
    README.write_text(f"{head}<!-- tools:start -->\n{table()}\n<!-- tools:end -->{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

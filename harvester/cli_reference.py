"""The README's command reference, generated from `--help` so that it cannot go stale.

`python -m harvester.cli_reference` rewrites the part of README.md between the two markers;
`tests/test_docs.py` fails when what is there differs from what this would write.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harvester.cli import main

START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def reference() -> str:
    """Each command's `--help`, as the terminal shows it at 100 columns."""
    parts = []
    settings = {**main.context_settings, "terminal_width": 100, "max_content_width": 100}
    with click.Context(main, info_name="ccqm", **settings) as top:
        for name in [None] + sorted(main.commands):
            if name is None:
                path, text = "ccqm", main.get_help(top)
            else:
                path = f"ccqm {name}"
                with click.Context(main.commands[name], info_name=name, parent=top) as ctx:
                    text = main.commands[name].get_help(ctx)
            parts.append(f"### `{path}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def rewrite(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{reference()}{END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")

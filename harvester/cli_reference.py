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
    """Each command's `--help` (and each subcommand's), as the terminal shows it at 100 columns."""
    parts = []
    settings = {**main.context_settings, "terminal_width": 100, "max_content_width": 100}

    def add(command: click.Command, ctx: click.Context, path: str) -> None:
        parts.append(f"### `{path}`\n\n```text\n{command.get_help(ctx)}\n```\n")
        for name in sorted(getattr(command, "commands", {})) if command is not main else []:
            sub = command.commands[name]
            with click.Context(sub, info_name=name, parent=ctx) as child:
                add(sub, child, f"{path} {name}")

    with click.Context(main, info_name="ccqm", **settings) as top:
        add(main, top, "ccqm")
        for name in sorted(main.commands):
            with click.Context(main.commands[name], info_name=name, parent=top) as ctx:
                add(main.commands[name], ctx, f"ccqm {name}")
    return "\n".join(parts)


def rewrite(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{reference()}{END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")

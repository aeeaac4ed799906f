"""The README stays true to the CLI: every command is documented and has help text."""

from __future__ import annotations

from harvester.cli import main
from tests.conftest import PROJECT


def test_every_command_is_in_the_readme_with_help():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    for name, command in main.commands.items():
        assert f"`ccqm {name}" in readme, f"ccqm {name} is not documented in README.md"
        assert command.help, f"ccqm {name} has no help text"


def test_readme_starts_with_the_demo_then_the_test_command():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```sh\n")[1:3]
    assert "ccqm demo" in blocks[0].split("```")[0]
    assert "pytest" in blocks[1]
    assert "README's test command, verbatim" in (PROJECT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].split("```")[0].strip() in (PROJECT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_readme_command_reference_is_generated_from_help():
    from harvester.cli_reference import END, START, rewrite

    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert START in readme and END in readme
    assert rewrite(readme) == readme, "README's command reference is stale: run python -m harvester.cli_reference"


def test_the_packaged_rubric_is_the_one_in_config():
    from harvester.config.settings import default_rubric_path

    assert default_rubric_path().read_bytes() == (PROJECT / "config" / "rubric.toml").read_bytes()

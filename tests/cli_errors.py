"""What the bad-input tests share: run ``bench`` in-process and read its one-line error."""
from __future__ import annotations

from click.testing import CliRunner

from brainbench.cli import main


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def one_line_error(result, *fragments) -> str:
    """The last line of stderr, checked: exit status 1, no traceback, ``Error: …`` holding every fragment."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last

"""A configuration mistake stops a command with what to change, never a traceback."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

NOWHERE = "postgresql://nobody:secret-password@127.0.0.1:9/nothing"


@pytest.mark.parametrize("command", [["migrate"], ["worker"], ["uso", "acme"]])
def test_a_catch_up_window_of_zero_stops_every_command_with_a_clear_message(
    command: list[str],
) -> None:
    result = run_cli(NOWHERE, *command, SUMMARY_CATCHUP_HOURS="0")

    assert result.returncode == 2
    assert "SUMMARY_CATCHUP_HOURS: must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "secret-password" not in result.stderr + result.stdout

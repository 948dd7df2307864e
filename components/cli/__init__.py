"""`servestack` command line: validate stack files, review changes, run operations.

Every command ends with an :class:`~servestack.cli.output.ExitCode`: 0 fine; 1 invalid input
(the message names the file and field); 2 refused (a forbidden change, a replacement or
deletion the gate blocks, a confirmation not given); 3 the update failed and was rolled back;
4 another operation holds the stack; 130 interrupted.
"""

from __future__ import annotations

# Importing the command modules registers their commands on `app`.
from servestack.cli import operations as operations
from servestack.cli import review as review
from servestack.cli import stack as stack
from servestack.cli.app import app, main
from servestack.cli.output import ExitCode

__all__ = ["ExitCode", "app", "main"]

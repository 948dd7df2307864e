"""The stack program that `pulumi up` runs: `servestack:*` config in, components out."""

from servestack.program.stack import build, main

__all__ = ["build", "main"]

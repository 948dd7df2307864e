"""Pulumi entry point of the servestack project (see components/program.py)."""

from components.program import main

main()

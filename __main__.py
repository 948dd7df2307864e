"""Pulumi entry point of the servestack project (see components/program/stack.py)."""

from servestack.program import main
from servestack.program.process import tune_gc

tune_gc()  # this process only runs the program: see components/program/process.py
main()

"""Pulumi entry point of the servestack project (see components/program.py)."""

from components.process import tune_gc
from components.program import main

tune_gc()  # this process only runs the program: see components/process.py
main()

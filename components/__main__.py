"""`python -m servestack`: the command line."""

from servestack.cli import main

main()

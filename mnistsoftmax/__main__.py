"""`python -m mnistsoftmax` runs the command line."""

from mnistsoftmax.cli import main

main()

"""``python -m tokensmith`` runs the command line."""

from tokensmith.cli.entry import main

main()

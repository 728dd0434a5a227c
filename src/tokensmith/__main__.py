"""``python -m tokensmith`` runs the command line."""

from tokensmith.cli.main import main

main()

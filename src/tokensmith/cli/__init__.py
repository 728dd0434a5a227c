"""The ``tokensmith`` command line (Typer)."""

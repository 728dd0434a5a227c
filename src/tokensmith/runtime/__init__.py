"""Turning settings into running services: master key, database, migrations, keys, logs."""

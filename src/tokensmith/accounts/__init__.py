"""People who log in: users and their Argon2id password hashes."""

"""OAuth 2.1 protocol logic on plain data; storage is reached through Protocols defined here."""

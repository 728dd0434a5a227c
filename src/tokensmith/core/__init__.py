"""Pure building blocks with no I/O: clock, secrets, sealing, durations, redirect URI syntax."""

"""A thin layer over joserfc: signing keys, their rotation, and JWS with an algorithm allowlist."""

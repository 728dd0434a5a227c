"""``make bench``: Tokensmith against node-oidc-provider on loopback (see docs/performance.md)."""

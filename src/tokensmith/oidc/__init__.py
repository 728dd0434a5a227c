"""OpenID Connect on top of the OAuth core: ID tokens (and later userinfo, logout)."""

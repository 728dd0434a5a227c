"""OpenID Connect on top of the OAuth core: ID tokens, userinfo claims, logout rules."""

"""Composition and the process's policies: services from settings, background jobs, readiness."""

"""Adapters to systems outside the process: Redis (shared limits), webhooks, the log stream.

Each is handed its values by the composition root (``runtime/services.py``) and reads no settings.
"""

"""API keys: format, lifecycle and the store behind them."""

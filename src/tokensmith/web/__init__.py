"""The HTTP face of the server (Starlette): parse requests, call the logic, render errors."""

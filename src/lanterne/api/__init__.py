"""The console's HTTP server. Today it serves the public transparency notice, which needs no
login; the operators' routes (issue 3) join it behind authentication."""

from lanterne.api.app import create_app, serve

__all__ = ["create_app", "serve"]

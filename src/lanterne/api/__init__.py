"""The console's HTTP server: the public transparency notice (no login) and the operators',
supervisors' and analysts' console behind a session. `app.py` assembles it; `deps.py` holds what
every route depends on (session, roles, CSRF, configuration, clock, database, audit log);
`routes/<area>.py` are thin handlers over the services of `lanterne.accountability` and
`lanterne.observatory`; `schemas/<area>.py` are their typed requests and answers."""

from lanterne.api.app import create_app, serve

__all__ = ["create_app", "serve"]

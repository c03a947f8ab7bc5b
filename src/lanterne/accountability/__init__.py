"""What makes the system answerable: accounts and roles, the human decision on every alert,
precision per detector and the suspensions it triggers, supervisors' stops, authorisations with an
end, retention and legal holds, the public transparency page and the impact-assessment draft.

Plain functions over the store and the audit log: no FastAPI, Typer or Rich here, so the console,
the CLI and the runtime share one implementation of each rule."""

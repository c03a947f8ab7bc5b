"""Putting the parts together for a running site: the runner that keeps every camera's analysis
alive under its authorisation, stops and retention, the one-shot `analyze`, and the demo."""

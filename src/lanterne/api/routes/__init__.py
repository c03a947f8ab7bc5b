"""One module per console area, each with a module-level `router` that calls services only."""

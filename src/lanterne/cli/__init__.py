"""The `lanterne` command: `main` builds the root app from one module per command group; each
module only parses arguments and prints, the work is done by the domain packages."""

"""`python -m lanterne.cli`: the same command as `lanterne`, for environments without the script."""

from lanterne.cli.main import app

if __name__ == "__main__":
    app()

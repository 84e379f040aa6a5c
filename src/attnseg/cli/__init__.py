"""Command-line entry points: argument parsing only, each over the public Python API."""

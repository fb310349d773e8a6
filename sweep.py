"""Sweeper's entry point: ``python sweep.py space.yaml`` (see README.md)."""

from sweeper.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

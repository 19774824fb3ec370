"""minigpt's version: the one place it is written (pyproject.toml reads it from here; `minigpt --version`)."""

VERSION = "0.1.0"

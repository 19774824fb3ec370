"""strategies (a ring of minigpt)."""

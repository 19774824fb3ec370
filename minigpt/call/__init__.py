"""call (a ring of minigpt)."""

"""sources (a ring of minigpt)."""

"""weights (a ring of minigpt)."""

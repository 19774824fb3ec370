"""cli (a ring of minigpt)."""

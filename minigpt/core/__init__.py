"""core (a ring of minigpt)."""

"""views (a ring of minigpt)."""

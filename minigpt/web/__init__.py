"""web (a ring of minigpt)."""

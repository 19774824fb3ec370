"""links (a ring of minigpt)."""

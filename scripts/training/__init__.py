"""The tiny model that ships in minigpt/data/tiny/: its training (train_tiny.py, torch and transformers) and the
text it learns from (tiny_corpus.py, NumPy and minigpt only, so that the tests rebuild the held-out text).

    python -m scripts.training.train_tiny          # from the checkout's root
"""

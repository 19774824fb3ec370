"""The programs behind the documentation: the notebook's outputs, the README's screenshots and the walkthrough.

    python -m scripts.docs.run_notebook            # docs/decoding_strategies.ipynb, run in a real kernel
    python -m scripts.docs.screenshots             # docs/images/explore-*.png, taken in headless Chromium
    python -m scripts.docs.decoding_strategies     # the classic study of decoding strategies, as text and figures
    python -m scripts.docs.options                 # the table of docs/options.md, from the option registry
"""

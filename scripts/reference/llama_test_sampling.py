"""Transcribe the cases of llama.cpp's own sampler test that minigpt replays, for tests/links/test_penalty_window.py.

    python -m scripts.reference.llama_test_sampling   # writes tests/fixtures/llama/test_sampling.json

llama.cpp's `tests/test-sampling.cpp` states its cases literally: the probabilities going in, the tokens the
sampler has accepted before it runs (the prompt, as llama.cpp's samplers see it), the settings, and the
probabilities expected after `llama_sampler_init_penalties(n_vocab, penalty_last_n = len(tokens), repeat,
frequency, presence)` and the final softmax, within 1e-5. This maker copies those numbers, the file's commit
beside them; it runs nothing (llama-cpp-python is not needed), so that the record says where each number
comes from. The other llama.cpp records, made by running its samplers, are written by scripts/reference/llama.py.
"""

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "llama" / "test_sampling.json"
SOURCE = {"repository": "ggml-org/llama.cpp", "path": "tests/test-sampling.cpp",
          "commit": "f0817df540977d3e3bd9038e7e108fa4f3b4bbde", "function": "test_penalties",
          "tolerance": 1e-5}
UNIFORM = [0.2, 0.2, 0.2, 0.2, 0.2]
# (accepted tokens, expected probabilities, repeat penalty, frequency penalty, presence penalty), in the file's order
PENALTIES = [
    ([0], [0, 0.25, 0.25, 0.25, 0.25], 50.0, 0.0, 0.0),
    ([0, 1, 2], [0, 0, 0, 0.5, 0.5], 50.0, 0.0, 0.0),
    ([0, 1, 2, 0, 0], [0, 0, 0, 0.5, 0.5], 50.0, 0.0, 0.0),
    ([0], [0.000011, 0.249997, 0.249997, 0.249997, 0.249997], 1.0, 5.0, 5.0),
    ([0, 1, 2], [0.000023, 0.000023, 0.000023, 0.499966, 0.499966], 1.0, 5.0, 5.0),
    ([0, 1, 2, 0, 0], [0.000000, 0.000023, 0.000023, 0.499977, 0.499977], 1.0, 5.0, 5.0),
]


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    cases = [{"probs": UNIFORM, "last_tokens": tokens, "expected": expected, "repeat_penalty": repeat,
              "frequency_penalty": frequency, "presence_penalty": presence}
             for tokens, expected, repeat, frequency, presence in PENALTIES]
    OUT.write_text(json.dumps({"source": SOURCE, "penalties": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()

"""The core stands alone: with every module of minigpt outside core/ made unimportable, it loads the shipped tiny
model from its files and generates greedy and sampled text, the tokens generate() gives.

The child Python gets minigpt as a bare package object whose __init__ does not run (the package's __init__ is its
outermost layer, importing every ring), and an import hook that refuses any minigpt module outside the core. It
then imports only what it uses, from the core, and reports the tokens and the minigpt modules it loaded."""

import json
import subprocess
import sys
from pathlib import Path

from helpers import program_env

import minigpt

PACKAGE = Path(minigpt.__file__).parent
CHILD = r"""
import importlib.abc, json, sys, types
package = types.ModuleType("minigpt")
package.__path__ = [sys.argv[1]]
sys.modules["minigpt"] = package

class OutsideTheCore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith("minigpt.") and name.split(".")[1] != "core":
            raise ImportError(f"{name} is outside the core")

sys.meta_path.insert(0, OutsideTheCore())
import numpy as np
from safetensors.numpy import load_file
from minigpt.core.chain import classic_chain
from minigpt.core.config import GPTConfig
from minigpt.core.loop import decode
from minigpt.core.model import GPT2, nest
from minigpt.core.tokenizer import Tokenizer

tiny = sys.argv[1] + "/data/tiny"
tensors = {name: array.astype(np.float32) for name, array in load_file(tiny + "/model.safetensors").items()}
model = GPT2(GPTConfig.from_json(tiny + "/config.json"), nest(tensors))
tok = Tokenizer(bpe="python")
ids = tok.encode("If the file is not found,")
greedy = list(decode(model, ids, classic_chain(), 24))
sampled = list(decode(model, ids, classic_chain(sampling=True, seed=5, temperature=0.8, top_k=40), 24))
try:
    import minigpt.call.generate
    reached = True
except ImportError:
    reached = False
print(json.dumps({"ids": ids, "greedy": greedy, "sampled": sampled, "text": tok.decode(greedy),
                  "modules": sorted(m for m in sys.modules if m.startswith("minigpt")), "reached": reached}))
"""


def test_the_core_alone_generates_what_generate_does():
    done = subprocess.run([sys.executable, "-c", CHILD, str(PACKAGE)], env=program_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    assert not child["reached"]  # the hook does refuse the rings
    assert all(m == "minigpt" or m.startswith("minigpt.core") for m in child["modules"]), child["modules"]
    model, tok = minigpt.load("tiny"), minigpt.Tokenizer()
    assert child["ids"] == tok.encode("If the file is not found,")
    assert child["greedy"] == minigpt.generate(model, child["ids"], max_new_tokens=24).sequences[0]
    sampled = minigpt.generate(model, child["ids"], "sample", seed=5, temperature=0.8, top_k=40, max_new_tokens=24)
    assert child["sampled"] == sampled.sequences[0]
    assert child["text"] == tok.decode(child["greedy"]) and len(child["text"].split()) >= 5

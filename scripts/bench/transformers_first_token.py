"""transformers' side of the benchmark's time to first token: what a user's script does to continue a prompt,
printing as it goes. It loads the tokenizer and the model from a local folder (AutoTokenizer,
AutoModelForCausalLM, float32), then generates greedily with a TextStreamer, which prints the prompt and each
token as it comes.

    python -m scripts.bench.transformers_first_token FOLDER "The meaning of life is" --threads 2

The folder needs tokenizer.json beside the checkpoint: the benchmark writes it (scripts/bench/first_token.py)
from minigpt's own copy of GPT-2's ranks. It imports torch and transformers only, so that the time it takes
is theirs: the benchmark times it from the command to the first byte after the prompt.
"""

import argparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TextStreamer


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.transformers_first_token",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="a folder with config.json, model.safetensors and tokenizer.json")
    parser.add_argument("prompt", help="the text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=1, help="tokens to generate (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="torch's threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.folder)
    model = AutoModelForCausalLM.from_pretrained(args.folder, dtype=torch.float32)
    inputs = tokenizer(args.prompt, return_tensors="pt")
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False, streamer=TextStreamer(tokenizer),
                       pad_token_id=tokenizer.eos_token_id)


if __name__ == "__main__":
    main()

"""transformers' own published expectations for the released GPT-2 weights (tests/models/gpt2/
test_modeling_gpt2.py in transformers). They run when minigpt finds the real checkpoint without the network
(in $MINIGPT_WEIGHTS, weights/ or the Hugging Face cache: `minigpt download gpt2`) and are skipped otherwise:
these machines cannot reach the hub."""

import pytest

import minigpt
from minigpt.weights import places as folders


def real_model(name):
    folder = folders.find(name)
    if folder is None:
        pytest.skip(f"the real {name} weights are not on this machine (run `minigpt download {name}` where there is "
                    "internet)")
    return minigpt.load(folder)


tok = minigpt.Tokenizer()


def test_gpt2_greedy_the_dog():
    model = real_model("gpt2")
    out = minigpt.generate(model, tok.encode("The dog"), max_new_tokens=18)
    assert out.sequences[0] == [373, 1043, 287, 257, 2214, 1474, 262, 16246, 286, 2688, 290, 2688, 27262, 13, 198, 198, 464, 3290]


def test_gpt2_left_padded_batch():
    model = real_model("gpt2")
    prompts = ["Hello, my dog is a little", "Today, I"]
    out = minigpt.generate(model, [tok.encode(p) for p in prompts], max_new_tokens=13)
    assert [p + t for p, t in zip(prompts, out.texts)] == [
        "Hello, my dog is a little bit of a mess. I'm not sure if he's going",
        "Today, I'm going to be doing a lot of research on this. I",
    ]


def test_gpt2_large_contrastive_search():
    model = real_model("gpt2-large")
    article = ("DeepMind Technologies is a British artificial intelligence subsidiary of Alphabet Inc. and research "
               "laboratory founded in 2010. DeepMind was acquired by Google in 2014. The company is based")
    ids = tok.encode(article)
    out = minigpt.generate(model, ids, "contrastive", penalty_alpha=0.6, top_k=4, max_new_tokens=256 - len(ids))
    assert article + out.texts[0] == (
        "DeepMind Technologies is a British artificial intelligence subsidiary of Alphabet Inc. and research "
        "laboratory founded in 2010. DeepMind was acquired by Google in 2014. The company is based in London, "
        "United Kingdom\n\nGoogle has a lot of data on its users and uses it to improve its products, such as "
        "Google Now, which helps users find the information they're looking for on the web. But the company "
        "is not the only one to collect data on its users. Facebook, for example, has its own facial "
        "recognition technology, as well as a database of millions of photos that it uses to personalize its "
        "News Feed.\n\nFacebook's use of data is a hot topic in the tech industry, with privacy advocates "
        "concerned about the company's ability to keep users' information private. In a blog post last "
        'year, Facebook CEO Mark Zuckerberg said his company would "do our best to be transparent about our '
        'data use and how we use it."\n\n"We have made it clear that we do not sell or share your data with '
        'third parties," Zuckerberg wrote. "If you have questions or concerns, please reach out to us at '
        'privacy@facebook.com."\n\nGoogle declined to comment on the privacy implications of its use of data, '
        "but said in a statement to The Associated Press that"
    )

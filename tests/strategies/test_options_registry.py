"""One declaration per option: the options dataclass, the refusals, the command line's flags and --help,
and the table of docs/options.md all come from strategies/options.py's REGISTRY, or are checked against it here."""

import re
from dataclasses import fields

import pytest
from helpers import CHECKOUT

from minigpt.call.strategies import STRATEGIES, build_options, users
from minigpt.cli.main import parser
from minigpt.core.link import GROUPS
from minigpt.links.chain import OPTIONS as CHAIN_OPTIONS
from minigpt.links.chain import PENALTY_ORDER, WARPER_ORDER
from minigpt.strategies.options import REGISTRY, GenerationOptions, OptionError
from minigpt.views.text import options_table

OPTIONS_PAGE = (CHECKOUT / "docs" / "options.md").read_text()
NEEDS = {"beam": {"num_beams": 4}, "beam-sample": {"num_beams": 4}, "diverse-beam": {"num_beams": 4, "num_beam_groups": 2},
         "speculative": {"draft_model": "distilgpt2", "do_sample": True}}


def generate_help() -> str:
    sub = next(a for a in parser()._actions if a.dest == "command")
    return sub.choices["generate"].format_help()


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_dataclass_has_one_field_per_declaration_with_its_default():
    declared = [(o.name, o.default) for o in REGISTRY]
    assert [(f.name, f.default) for f in fields(GenerationOptions)][1:] == declared
    assert len({o.name for o in REGISTRY}) == len(REGISTRY)


def test_every_link_declares_its_options_in_the_registry():
    links = [*PENALTY_ORDER, *(cls for classes in WARPER_ORDER.values() for cls in classes)]
    assert all(cls.options for cls in links)
    assert {o.name for cls in links for o in cls.options} <= {o.name for o in CHAIN_OPTIONS} <= {o.name for o in REGISTRY}


@pytest.mark.parametrize("option", REGISTRY, ids=lambda o: o.name)
def test_every_option_has_a_flag_with_its_help_in_its_group(option):
    help_text = generate_help()
    if option.python_only:  # a function: no flag, and said so in the table of options
        assert option.flag not in help_text and "Python only" in option.help
        return
    sections = re.split(r"\n(?=\S[^\n]*:\n)", help_text)  # argparse's "title:" lines
    section = next(s for s in sections if s.startswith(f"{option.group}:\n"))
    assert option.flag in section and flat(option.help) in flat(section)
    assert flat(GROUPS[option.group]) in flat(section)
    assert [s.split(":")[0] for s in sections if s.split(":")[0] in GROUPS] == list(GROUPS)


@pytest.mark.parametrize("option", REGISTRY, ids=lambda o: o.name)
def test_every_option_refuses_a_bad_value_naming_itself(option):
    strategy = users(option)[0]
    if option.kind in (int, float) and (option.low is not None or option.high is not None):
        bad = option.low - 1 if option.low is not None else option.high + 1
    else:
        bad = object() if option.kind is not bool else "yes"
    with pytest.raises(OptionError, match=rf"^{option.name} must be"):
        build_options(strategy, **(NEEDS.get(strategy, {}) | {option.name: bad}))
    others = [s for s in STRATEGIES if s not in users(option)]
    for other in others:
        with pytest.raises(OptionError, match=f"does not use {option.name}"):
            build_options(other, **(NEEDS.get(other, {}) | {option.name: option.default}))


def test_the_options_page_lists_every_option_as_the_registry_declares_it():
    assert "\n".join(options_table(REGISTRY)) in OPTIONS_PAGE


def test_every_help_is_one_short_line():
    for option in REGISTRY:
        assert option.help and "\n" not in option.help and len(option.help) < 160, option.name

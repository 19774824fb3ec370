"""Where a model's files are: a model name -> the folders that may hold it, in the order minigpt looks.

A hub name ("gpt2", or a repo id "owner/name") is looked up in three places, and the first that holds both
`config.json` and `model.safetensors` wins:
  1. $MINIGPT_WEIGHTS/<name>, when MINIGPT_WEIGHTS is set;
  2. the source checkout's weights/<name>, when minigpt runs from a checkout (pyproject.toml and weights/
     beside the package), for people working in the repository;
  3. the Hugging Face cache, where transformers keeps what it downloads: the snapshot of the repo's main
     revision, read through huggingface_hub's own try_to_load_from_cache. The cache is HF_HUB_CACHE, else
     HF_HOME/hub, else ~/.cache/huggingface/hub, as huggingface_hub reads them once, at import.
<name> is the short name for the five known models (weights/gpt2) and owner/name for any other repo id.
A download goes into the first of $MINIGPT_WEIGHTS and the checkout's weights/ that exists, else into the
Hugging Face cache: never into the working directory.

A cache entry can be there and still be unusable: a file missing, a link to a blob that is gone (a download
cut short, a cache pruned by hand), or only pytorch_model.bin, which minigpt never opens. `cache_fault` says
which, in words a message can use; nothing here opens a weights file.

What this module is not: it makes no network call (hub.py downloads) and reads no weights (checkpoint.py).
"""

import os
import re
from pathlib import Path

KNOWN_MODELS = {
    "gpt2": "openai-community/gpt2",  # 124M
    "gpt2-medium": "openai-community/gpt2-medium",  # 355M
    "gpt2-large": "openai-community/gpt2-large",  # 774M
    "gpt2-xl": "openai-community/gpt2-xl",  # 1.5B
    "distilgpt2": "distilbert/distilgpt2",  # 82M, 6 layers
}
SHORT_NAMES = {repo: name for name, repo in KNOWN_MODELS.items()}

# Models that ship inside the package, in a folder of config.json + model.safetensors: never downloaded.
PACKAGED_MODELS = {"tiny": Path(__file__).resolve().parents[1] / "data" / "tiny"}
MODEL_NAMES = (*KNOWN_MODELS, *PACKAGED_MODELS)  # every name resolve() knows, as messages list them

# The two files of a checkpoint folder. The weights come first so that a repo without
# model.safetensors is refused before anything is written.
CHECKPOINT_FILES = ("model.safetensors", "config.json")

# The folder above the package: a source checkout when it holds pyproject.toml and weights/, and
# site-packages (no checkout) when minigpt was installed from a wheel.
CHECKOUT = Path(__file__).resolve().parents[2]

# "owner/name" as the hub spells repo ids; the hub itself checks the finer rules.
_REPO_ID = re.compile(r"\w[\w.-]*/\w[\w.-]*")


def is_hub_name(name: str) -> bool:
    """True for a known short name ("gpt2") or anything spelled like a hub repo id ("owner/name")."""
    if name in KNOWN_MODELS:
        return True
    return _REPO_ID.fullmatch(name) is not None and not name.endswith(".safetensors")


def repo_id(name: str) -> str:
    """The hub repo id of a model name: "gpt2" -> "openai-community/gpt2"; a repo id is its own."""
    if not is_hub_name(name):
        raise ValueError(unknown_name(name))
    return KNOWN_MODELS.get(name, name)


def subfolder(name: str) -> str:
    """<name> in $MINIGPT_WEIGHTS/<name>: "gpt2" for gpt2 and openai-community/gpt2 alike, else owner/name."""
    repo = repo_id(name)
    return SHORT_NAMES.get(repo, repo)


def weights_dirs() -> list[Path]:
    """minigpt's own weights folders, in the order they are looked in: $MINIGPT_WEIGHTS if set, then the
    checkout's weights/ if minigpt runs from one. Empty for an installed package without MINIGPT_WEIGHTS."""
    dirs = [Path(os.environ["MINIGPT_WEIGHTS"]).expanduser()] if os.environ.get("MINIGPT_WEIGHTS") else []
    if (CHECKOUT / "weights").is_dir() and (CHECKOUT / "pyproject.toml").is_file():
        dirs.append(CHECKOUT / "weights")
    return dirs


def destination(name: str) -> Path | None:
    """The folder a download of `name` goes into: the first weights folder's <name>, or None for the
    Hugging Face cache."""
    dirs = weights_dirs()
    return dirs[0] / subfolder(name) if dirs else None


def find(name: str) -> Path | None:
    """The first folder, in the lookup order, that holds both files of `name`; None if none does. No network."""
    for folder in (d / subfolder(name) for d in weights_dirs()):
        if all((folder / filename).is_file() for filename in CHECKPOINT_FILES):
            return folder
    return cache_snapshot(repo_id(name))


# -- the Hugging Face cache ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """The Hugging Face cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    # Imported here, as in hub.py: only a hub name needs huggingface_hub, loading a local checkpoint does not.
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_files(repo: str) -> dict[str, Path]:
    """Which of the two files the cache holds for the repo's main revision, and where: huggingface_hub's own
    lookup, which follows refs/main to a snapshot and counts a link to a missing blob as absent."""
    from huggingface_hub import try_to_load_from_cache

    found = {}
    for filename in CHECKPOINT_FILES:
        path = try_to_load_from_cache(repo, filename, cache_dir=cache_dir(), revision="main")
        if isinstance(path, str):  # not None (never cached) nor _CACHED_NO_EXIST (the hub said it has no such file)
            found[filename] = Path(path)
    return found


def cache_snapshot(repo: str) -> Path | None:
    """The cache's snapshot folder of the repo's main revision, if it holds both files."""
    found = cached_files(repo)
    return found["config.json"].parent if len(found) == len(CHECKPOINT_FILES) else None


def cache_repo_folder(repo: str) -> Path:
    """The repo's folder in the cache: models--owner--name, holding blobs/, refs/ and snapshots/."""
    from huggingface_hub.file_download import repo_folder_name

    return cache_dir() / repo_folder_name(repo_id=repo, repo_type="model")


def main_snapshot(repo: str) -> Path | None:
    """The snapshot folder that refs/main names, whether or not it holds anything; None without refs/main."""
    folder = cache_repo_folder(repo)
    try:
        return folder / "snapshots" / (folder / "refs" / "main").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def cache_fault(repo: str) -> str | None:
    """Why the cache's entry for the repo cannot be used, as a clause naming the file ("... is a link to a blob
    that is gone"); None when there is no entry, or a complete one. Stats files, never opens them."""
    snapshot = main_snapshot(repo)
    if snapshot is None or not snapshot.is_dir():
        return None
    for filename in CHECKPOINT_FILES:
        path = snapshot / filename
        if path.is_symlink() and not path.exists():
            return f"{shown_path(path)} is a link to a blob that is gone"
    if not (snapshot / "model.safetensors").exists() and (snapshot / "pytorch_model.bin").exists():
        return (f"{shown(snapshot)} holds pytorch_model.bin but no model.safetensors, and minigpt never unpickles "
                f"a checkpoint")
    missing = [filename for filename in CHECKPOINT_FILES if not (snapshot / filename).is_file()]
    return f"{shown(snapshot)} has no {missing[0]}" if missing else None


# -- folders as messages show them --------------------------------------------------------------------


def shown(folder: Path) -> str:
    """A folder as the user would type it, with a final /: see shown_path."""
    return f"{shown_path(folder)}{os.sep}"


def shown_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it, else under ~ when
    inside the home folder (the Hugging Face cache, usually), else absolute."""
    path = Path(path).absolute()
    try:  # the folder resolved, not the file: a link in the cache is named, not the blob it points to
        return str((path.parent.resolve() / path.name).relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):  # elsewhere, or the working directory is gone
        pass
    try:
        return str(Path("~", path.relative_to(Path.home())))
    except (ValueError, RuntimeError):  # elsewhere, or no home folder
        return str(path)


def unknown_name(name: str) -> str:
    return (
        f"{name!r} is neither an existing path nor a model name; pass a checkpoint folder, "
        f"a .safetensors file, a hub repo id 'owner/name' or one of {', '.join(MODEL_NAMES)}."
    )

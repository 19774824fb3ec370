"""Where a checkpoint comes from: a model name, a Hugging Face hub repo id or a local path -> a local path.

`resolve("gpt2")` returns a folder holding the two files the loader reads, `config.json` and
`model.safetensors`, exactly as the hub ships them. The first call downloads them with
`huggingface_hub.hf_hub_download` into `weights_dir()/gpt2`; every later call finds them there and
makes no network call. A path to an existing folder or `.safetensors` file is returned untouched.

`hf_hub_download` writes each file under a temporary `.incomplete` name and moves it into place only
when it is complete, so an interrupted download never leaves a partial file under the final name.

What this module is not: it reads no weights (that is `checkpoint.py`), it never downloads or unpickles
`pytorch_model.bin`, and it prints nothing itself (huggingface_hub shows its own progress bar).
"""

import os
import re
import tempfile
from pathlib import Path

KNOWN_MODELS = {
    "gpt2": "openai-community/gpt2",  # 124M
    "gpt2-medium": "openai-community/gpt2-medium",  # 355M
    "gpt2-large": "openai-community/gpt2-large",  # 774M
    "gpt2-xl": "openai-community/gpt2-xl",  # 1.5B
    "distilgpt2": "distilbert/distilgpt2",  # 82M, 6 layers
}
SHORT_NAMES = {repo: name for name, repo in KNOWN_MODELS.items()}

# The two files of a checkpoint folder. The weights come first so that a repo without
# model.safetensors is refused before anything is written.
CHECKPOINT_FILES = ("model.safetensors", "config.json")

# "owner/name" as the hub spells repo ids; the hub itself checks the finer rules.
_REPO_ID = re.compile(r"\w[\w.-]*/\w[\w.-]*")


class DownloadError(FileNotFoundError):
    """A checkpoint's files are not here and could not be fetched from the hub (or written to the weights
    folder). A FileNotFoundError, so that callers catch one documented type for "the files are not there"."""


def weights_dir() -> Path:
    """The folder that holds one subfolder per downloaded model.

    $MINIGPT_WEIGHTS if set; else the `weights/` folder of the source checkout this package runs
    from; else `./weights`.
    """
    if os.environ.get("MINIGPT_WEIGHTS"):
        return Path(os.environ["MINIGPT_WEIGHTS"]).expanduser()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "weights").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / "weights"
    return Path.cwd() / "weights"


def _is_hub_name(name: str) -> bool:
    """True for a known short name ("gpt2") or anything spelled like a hub repo id ("owner/name")."""
    if name in KNOWN_MODELS:
        return True
    return _REPO_ID.fullmatch(name) is not None and not name.endswith(".safetensors")


def repo_id(name: str) -> str:
    """The hub repo id of a model name: "gpt2" -> "openai-community/gpt2"; a repo id is its own."""
    if not _is_hub_name(name):
        raise ValueError(_unknown_name(name))
    return KNOWN_MODELS.get(name, name)


def local_folder(name: str) -> Path:
    """Where a model's files live: weights_dir()/gpt2 for "gpt2" and "openai-community/gpt2" alike,
    weights_dir()/owner/name for any other repo id."""
    repo = repo_id(name)
    return weights_dir() / SHORT_NAMES.get(repo, repo)


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A local path the loader can read: a checkpoint folder or a single .safetensors file.

    An existing path is returned as is; a model name or hub repo id is downloaded on first use.
    Raises FileNotFoundError for a path that does not exist, ValueError for an argument that is
    neither a path nor a hub name, DownloadError (a FileNotFoundError) when the files cannot be fetched.
    """
    name = os.fspath(name_or_path)
    path = Path(os.path.expanduser(name))
    if name and _exists(path):  # Path("") would be the working directory
        return path
    if isinstance(name_or_path, str) and _is_hub_name(name):
        return download(name)
    if isinstance(name_or_path, os.PathLike) or _looks_like_path(name):
        raise FileNotFoundError(
            f"{name} does not exist; pass a folder holding config.json and model.safetensors, "
            f"a .safetensors file, or a model name such as 'gpt2'."
        )
    raise ValueError(_unknown_name(name))


def download(name: str) -> Path:
    """Download config.json and model.safetensors of a model name or hub repo id into local_folder(name).

    Makes no network call when both files are already there. Returns the folder.
    """
    repo, folder = repo_id(name), local_folder(name)
    if all((folder / filename).is_file() for filename in CHECKPOINT_FILES):
        return folder
    _check_writable(folder)
    for filename in CHECKPOINT_FILES:
        _download_file(repo, filename, folder)
    return folder


def _download_file(repo: str, filename: str, folder: Path) -> None:
    """One hf_hub_download call, its errors turned into one sentence that says what to do."""
    # Imported here: only a download needs huggingface_hub, loading a local checkpoint does not.
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.utils import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )
    from huggingface_hub.utils import logging as hub_logging

    verbosity = hub_logging.get_verbosity()
    hub_logging.set_verbosity_error()  # its "Retrying in 1s" lines would come before our one sentence
    try:
        hf_hub_download(repo, filename, local_dir=folder)
    except HFValidationError as err:
        raise ValueError(f"{repo!r} is not a valid hub repo id ({_first_line(err)}); check its spelling.") from err
    except RepositoryNotFoundError as err:  # also private and gated repos, which the hub hides
        raise DownloadError(
            f"{repo!r} is not a local path and the Hugging Face hub has no public repo of that name; "
            f"check the spelling, or pass one of {', '.join(KNOWN_MODELS)}."
        ) from err
    except LocalEntryNotFoundError as err:  # offline, or the hub did not answer; before EntryNotFoundError
        reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hugging Face hub cannot be reached"
        raise DownloadError(
            f"cannot download {filename} of {repo} because {reason}; on a machine without internet, "
            f"copy config.json and model.safetensors from https://huggingface.co/{repo} into {folder}."
        ) from err
    except EntryNotFoundError as err:
        if filename == "model.safetensors":
            raise DownloadError(
                f"the hub repo {repo} has no model.safetensors (perhaps only pytorch_model.bin), and minigpt "
                f"reads only safetensors and never unpickles a checkpoint; convert it to safetensors and place it "
                f"in {folder}."
            ) from err
        raise DownloadError(
            f"the hub repo {repo} has no {filename}, so minigpt cannot load it; pass a repo or folder "
            f"holding config.json and model.safetensors."
        ) from err
    except Exception as err:  # network dropped mid-file, hub error, disk full, ...
        raise DownloadError(
            f"downloading {filename} of {repo} into {folder} failed ({type(err).__name__}: {_first_line(err)}); "
            f"no partial file was kept, so trying again starts afresh."
        ) from err
    finally:
        hub_logging.set_verbosity(verbosity)


def _check_writable(folder: Path) -> None:
    """Create the model's folder and prove it writable, before any network call."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise DownloadError(
            f"cannot write to the weights folder {folder} ({err.strerror or err}); "
            f"set MINIGPT_WEIGHTS to a folder you can write to."
        ) from err


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long to be a path, say: then it names no file
        return False


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or name.endswith(".safetensors") or name.startswith((".", "~"))


def _unknown_name(name: str) -> str:
    return (
        f"{name!r} is neither an existing path nor a model name; pass a checkpoint folder, "
        f"a .safetensors file, a hub repo id 'owner/name' or one of {', '.join(KNOWN_MODELS)}."
    )


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(".") if lines else "no details"

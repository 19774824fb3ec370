"""Where a checkpoint comes from: a model name, a Hugging Face hub repo id or a local path -> a local path.

`resolve("gpt2")` returns a folder holding the two files the loader reads, `config.json` and
`model.safetensors`, exactly as the hub ships them. The first call downloads them into `weights_dir()/gpt2`;
every later call finds them there and makes no network call. "tiny" is the small model that ships inside the
package (`minigpt/data/tiny/`): it is never downloaded. A path to an existing folder or `.safetensors` file
is returned untouched.

A download goes in three steps. First the hub is asked for each missing file's size (one HEAD request
each), and it must answer within ANSWER_SECONDS in all, name lookup included, so that a machine without
network hears so in one sentence within 3 s instead of after huggingface_hub's retries. Then `report`, if
given, receives one line saying what is downloaded, how big, from where and into which folder. Then
`huggingface_hub.hf_hub_download` fetches each file, with its own timeouts (HF_HUB_DOWNLOAD_TIMEOUT
between two chunks, never a cap on the whole transfer) and its own progress bar (on a terminal only;
TQDM_DISABLE and HF_HUB_DISABLE_PROGRESS_BARS hide it). HF_ENDPOINT, HF_HUB_OFFLINE and HF_HUB_ETAG_TIMEOUT
mean what huggingface_hub says they mean; the last one replaces ANSWER_SECONDS when set.

Each file is written under a temporary name and moved into place only when complete. After the download,
failed, interrupted or done, the model folder holds no partial file and none of huggingface_hub's
bookkeeping (`.cache/huggingface/`: locks and metadata): only the files that arrived whole.

What this module is not: it reads no weights (that is `checkpoint.py`), it never downloads or unpickles
`pytorch_model.bin`, and it prints nothing itself.
"""

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
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
PACKAGED_MODELS = {"tiny": Path(__file__).resolve().parent / "data" / "tiny"}
MODEL_NAMES = (*KNOWN_MODELS, *PACKAGED_MODELS)  # every name resolve() knows, as messages list them

# The two files of a checkpoint folder. The weights come first so that a repo without
# model.safetensors is refused before anything is written.
CHECKPOINT_FILES = ("model.safetensors", "config.json")

# How long the hub has to answer the size requests, in all, before the download is given up as unreachable:
# with Python's start-up, a run without network then ends within 3 s. HF_HUB_ETAG_TIMEOUT, when set, wins.
ANSWER_SECONDS = 2.0

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
    weights_dir()/owner/name for any other repo id, the package's own folder for "tiny"."""
    if name in PACKAGED_MODELS:
        return PACKAGED_MODELS[name]
    repo = repo_id(name)
    return weights_dir() / SHORT_NAMES.get(repo, repo)


def resolve(name_or_path: str | os.PathLike, report: Callable[[str], None] | None = None) -> Path:
    """A local path the loader can read: a checkpoint folder or a single .safetensors file.

    An existing path is returned as is; "tiny" is the package's own folder; a model name or hub repo id
    is downloaded on first use (see download(), which receives `report`). Raises FileNotFoundError for a
    path that does not exist, ValueError for an argument that is neither a path nor a model name,
    DownloadError (a FileNotFoundError) when the files cannot be fetched.
    """
    name = os.fspath(name_or_path)
    path = Path(os.path.expanduser(name))
    if name and _exists(path):  # Path("") would be the working directory
        return path
    if isinstance(name_or_path, str) and (name in PACKAGED_MODELS or _is_hub_name(name)):
        return download(name, report)
    if isinstance(name_or_path, os.PathLike) or _looks_like_path(name):
        raise FileNotFoundError(
            f"{name} does not exist; pass a folder holding config.json and model.safetensors, "
            f"a .safetensors file, or a model name such as 'gpt2'."
        )
    raise ValueError(_unknown_name(name))


def download(name: str, report: Callable[[str], None] | None = None) -> Path:
    """Download config.json and model.safetensors of a model name or hub repo id into local_folder(name).

    Makes no network call when both files are already there, and none for "tiny". Before the first byte
    is transferred, report (if given) receives one line: what, how big, from where, into which folder.
    Returns the folder.
    """
    if name in PACKAGED_MODELS:
        return _packaged(name)
    repo, folder = repo_id(name), local_folder(name)
    missing = [filename for filename in CHECKPOINT_FILES if not (folder / filename).is_file()]
    if not missing:
        return folder
    _check_writable(folder)
    sizes = _ask_sizes(name, repo, missing, folder)
    if report is not None:
        report(_announcement(name, repo, sizes, folder))
    try:
        with _quiet_hub():
            for filename in missing:
                _download_file(name, repo, filename, folder)
    finally:  # a failure, Ctrl-C or success: no lock, metadata or partial file stays behind
        _remove_hub_bookkeeping(folder)
    return folder


def _packaged(name: str) -> Path:
    folder = PACKAGED_MODELS[name]
    if not all((folder / filename).is_file() for filename in CHECKPOINT_FILES):
        raise FileNotFoundError(
            f"the model {name!r} ships with minigpt in {folder}, but that folder lacks config.json or "
            f"model.safetensors; reinstall minigpt (pip install -e . in its checkout)."
        )
    return folder


def _ask_sizes(name: str, repo: str, filenames: list[str], folder: Path) -> dict[str, int | None]:
    """Each file's size from one HEAD request to the hub, which must answer within the time allowed in all.

    The requests run in a daemon thread, because no HTTP timeout bounds the name lookup that comes first;
    the caller waits for it no longer than the time allowed, then gives up with one sentence.
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    if constants.HF_HUB_OFFLINE:  # no request at all, as huggingface_hub defines offline mode
        raise DownloadError(_no_hub_sentence(name, repo, folder, "HF_HUB_OFFLINE is set"))
    seconds = _answer_seconds()
    sizes: dict[str, int | None] = {}
    failure: list[tuple[str, Exception]] = []  # the file whose request failed, and why

    def ask():
        for filename in filenames:
            try:
                url = hf_hub_url(repo, filename)  # its own timeout a second later: the join below decides
                sizes[filename] = get_hf_file_metadata(url, timeout=seconds + 1).size
            except Exception as err:  # handed over to the caller's thread
                failure.append((filename, err))
                return

    worker = threading.Thread(target=ask, name="minigpt-hub-sizes", daemon=True)
    worker.start()
    worker.join(seconds)
    hub = f"the Hugging Face hub ({constants.ENDPOINT})"
    if worker.is_alive():
        longer = " (HF_HUB_ETAG_TIMEOUT=30 waits longer)" if seconds < 30 else ""
        reason = f"{hub} did not answer within {seconds:g} s{longer}"
        raise DownloadError(_no_hub_sentence(name, repo, folder, reason))
    if failure:
        [(filename, err)] = failure
        if _answered(err):
            raise _refusal(err, name, repo, filename, folder) from err
        raise DownloadError(
            _no_hub_sentence(name, repo, folder, f"{hub} cannot be reached ({_first_line(err)})")
        ) from err
    return sizes


def _answer_seconds() -> float:
    from huggingface_hub import constants

    if constants.HF_HUB_ETAG_TIMEOUT != constants.DEFAULT_ETAG_TIMEOUT:  # set by the user: theirs wins
        return float(constants.HF_HUB_ETAG_TIMEOUT)
    return ANSWER_SECONDS


def _answered(err: Exception) -> bool:
    """True when the error is the hub's answer (an HTTP status, a bad repo id), False when no answer came."""
    from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError, HFValidationError

    return isinstance(err, (HfHubHTTPError, HFValidationError, EntryNotFoundError))


def _download_file(name: str, repo: str, filename: str, folder: Path) -> None:
    """One hf_hub_download call, its errors turned into one sentence that says what to do."""
    # Imported here: only a download needs huggingface_hub, loading a local checkpoint does not.
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(repo, filename, local_dir=folder)
    except Exception as err:
        raise _refusal(err, name, repo, filename, folder) from err


def _refusal(err: Exception, name: str, repo: str, filename: str, folder: Path) -> Exception:
    """huggingface_hub's error as one sentence that says what to do."""
    from huggingface_hub import constants
    from huggingface_hub.utils import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    if isinstance(err, HFValidationError):
        return ValueError(f"{repo!r} is not a valid hub repo id ({_first_line(err)}); check its spelling.")
    if isinstance(err, RepositoryNotFoundError):  # also private and gated repos, which the hub hides
        return DownloadError(
            f"{repo!r} is not a local path and the Hugging Face hub has no public repo of that name; "
            f"check the spelling, or pass one of {', '.join(MODEL_NAMES)}."
        )
    if isinstance(err, LocalEntryNotFoundError):  # offline, or the hub did not answer; before EntryNotFoundError
        hub = f"the Hugging Face hub ({constants.ENDPOINT})"
        reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"{hub} cannot be reached"
        return DownloadError(_no_hub_sentence(name, repo, folder, reason))
    if isinstance(err, EntryNotFoundError) and filename == "model.safetensors":
        return DownloadError(
            f"the hub repo {repo} has no model.safetensors (perhaps only pytorch_model.bin), and minigpt "
            f"reads only safetensors and never unpickles a checkpoint; convert it to safetensors and place it "
            f"in {_shown(folder)}."
        )
    if isinstance(err, EntryNotFoundError):
        return DownloadError(
            f"the hub repo {repo} has no {filename}, so minigpt cannot load it; pass a repo or folder "
            f"holding config.json and model.safetensors."
        )
    return DownloadError(  # network dropped mid-file, hub error, disk full, ...
        f"downloading {filename} of {repo} into {_shown(folder)} failed ({type(err).__name__}: "
        f"{_first_line(err)}); no partial file was kept, so trying again starts afresh."
    )


def _no_hub_sentence(name: str, repo: str, folder: Path, reason: str) -> str:
    """The one sentence for a hub out of reach: which two files to place where, and the model that needs none."""
    from huggingface_hub import constants

    return (
        f"cannot download {name} because {reason}; copy config.json and model.safetensors from "
        f"{constants.ENDPOINT}/{repo}/tree/main into {_shown(folder)}, or use tiny, the small model that ships "
        f"with minigpt and needs no download (--model tiny, or minigpt.load(\"tiny\") in Python)."
    )


def _announcement(name: str, repo: str, sizes: dict[str, int | None], folder: Path) -> str:
    """"downloading gpt2 (config.json and model.safetensors, 548 MB) from https://... into weights/gpt2/"."""
    from huggingface_hub import constants

    what = " and ".join(sorted(sizes))
    if all(size is not None for size in sizes.values()):
        what += f", {_size(sum(sizes.values()))}"
    return f"downloading {name} ({what}) from {constants.ENDPOINT}/{repo} into {_shown(folder)}"


@contextmanager
def _quiet_hub():
    """huggingface_hub's warnings off during a download (its "Retrying in 1s" lines would come before our one
    sentence), and its progress bar off when TQDM_DISABLE is set (a non-empty value, as tqdm reads it)."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from huggingface_hub.utils import logging as hub_logging

    verbosity = hub_logging.get_verbosity()
    hub_logging.set_verbosity_error()
    hide_bar = bool(os.environ.get("TQDM_DISABLE")) and not are_progress_bars_disabled()
    if hide_bar:
        disable_progress_bars()
    try:
        yield
    finally:
        hub_logging.set_verbosity(verbosity)
        if hide_bar:
            enable_progress_bars()


def _remove_hub_bookkeeping(folder: Path) -> None:
    """Remove what hf_hub_download keeps in the model folder: .cache/huggingface/ with its lock files,
    download metadata and any partial (.incomplete) file; then .cache/ itself if that leaves it empty."""
    shutil.rmtree(folder / ".cache" / "huggingface", ignore_errors=True)
    try:
        (folder / ".cache").rmdir()
    except OSError:  # not there, or it holds something else
        pass


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


def _shown(folder: Path) -> str:
    """A folder as the user would type it: relative to the working directory when inside it, with a final /."""
    try:
        folder = folder.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        pass
    return f"{folder}{os.sep}"


def _size(n: float) -> str:
    """Bytes in decimal units, as the progress bar counts them: 548105171 -> "548 MB", 6431952241 -> "6.4 GB"."""
    units = ("bytes", "kB", "MB", "GB")
    unit = 0
    while n >= 999.5 and unit < len(units) - 1:
        n, unit = n / 1000, unit + 1
    return f"{n:.0f} {units[unit]}" if unit == 0 or n >= 9.95 else f"{n:.1f} {units[unit]}"


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
        f"a .safetensors file, a hub repo id 'owner/name' or one of {', '.join(MODEL_NAMES)}."
    )


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(".") if lines else "no details"

"""Where a checkpoint comes from: a model name, a Hugging Face hub repo id or a local path -> a local path.

`resolve("gpt2")` returns a folder holding the two files the loader reads, `config.json` and `model.safetensors`,
exactly as the hub ships them: found, without the network, where places.py looks ($MINIGPT_WEIGHTS, the
checkout's weights/, the Hugging Face cache), or else downloaded into folders.destination(name): minigpt's own
weights folder, or the Hugging Face cache shared with transformers. "tiny" ships inside the package and is never
downloaded. A path to an existing folder or `.safetensors` file is returned untouched.

A download goes in three steps. First the hub is asked for each missing file's size (one HEAD request
each), and it must answer within ANSWER_SECONDS in all, name lookup included, so that a machine without
network hears so in one sentence within 3 s instead of after huggingface_hub's retries. Then `report`, if
given, receives one line saying what is downloaded, how big, from where and into which folder. Then
`huggingface_hub.hf_hub_download` fetches each file, with its own timeouts (HF_HUB_DOWNLOAD_TIMEOUT between
two chunks) and progress bar (on a terminal only; TQDM_DISABLE and HF_HUB_DISABLE_PROGRESS_BARS hide it).
HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE and HF_HUB_ETAG_TIMEOUT mean what huggingface_hub says.

Each file is written under a temporary name and moved into place only when complete, so a failure or Ctrl-C
leaves no file that looks whole: the cache keeps its own layout (blobs, refs/main, snapshots of links, locks in
.locks/), and a minigpt folder only the files that arrived (huggingface_hub's `.cache/` is removed). An
incomplete cache entry is downloaded again; when the hub is out of reach, the error names it and the fix.

What this module is not: it reads no weights (checkpoint.py), never downloads or unpickles `pytorch_model.bin`,
and prints nothing itself.
"""

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from .places import (CHECKPOINT_FILES, MODEL_NAMES, PACKAGED_MODELS, cache_dir, cache_fault, cache_repo_folder,
                     cached_files, destination, find, is_hub_name, repo_id, shown, subfolder, unknown_name)

# How long the hub has to answer the size requests, in all, before the download is given up as unreachable:
# with Python's start-up, a run without network then ends within 3 s. HF_HUB_ETAG_TIMEOUT, when set, wins.
ANSWER_SECONDS = 2.0


class DownloadError(FileNotFoundError):
    """A checkpoint's files are not here and could not be fetched from the hub (or written to the weights
    folder). A FileNotFoundError, so that callers catch one documented type for "the files are not there"."""


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
    if isinstance(name_or_path, str) and (name in PACKAGED_MODELS or is_hub_name(name)):
        return download(name, report)
    if isinstance(name_or_path, os.PathLike) or _looks_like_path(name):
        raise FileNotFoundError(
            f"{name} does not exist; pass a folder holding config.json and model.safetensors, "
            f"a .safetensors file, or a model name such as 'gpt2'."
        )
    raise ValueError(unknown_name(name))


def download(name: str, report: Callable[[str], None] | None = None) -> Path:
    """The folder that holds config.json and model.safetensors of a model name or hub repo id, downloaded
    into folders.destination(name) unless one of the places folders.find looks in already holds them.

    Makes no network call when the files are found, and none for "tiny". Before the first byte is
    transferred, report (if given) receives one line: what, how big, from where, into which folder.
    """
    if name in PACKAGED_MODELS:
        return _packaged(name)
    repo = repo_id(name)
    found = find(name)
    if found is not None:
        return found
    folder = destination(name)
    if folder is None:
        return _download_into_cache(name, repo, report)
    missing = [filename for filename in CHECKPOINT_FILES if not (folder / filename).is_file()]
    _check_writable(folder, f"the weights folder {folder}", "set MINIGPT_WEIGHTS to a folder you can write to")
    with _no_empty_folders_left(folder), _quiet_hub():
        sizes, _ = _ask_sizes(name, repo, missing, folder)
        if report is not None:
            report(_announcement(name, repo, sizes, folder))
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for filename in missing:
                _download_file(name, repo, filename, folder)
        finally:  # a failure, Ctrl-C or success: no lock, metadata or partial file stays behind
            _remove_hub_bookkeeping(folder)
    return folder


def _download_into_cache(name: str, repo: str, report: Callable[[str], None] | None) -> Path:
    """The missing files into the Hugging Face cache, as transformers would fetch them: the snapshot folder."""
    missing = [filename for filename in CHECKPOINT_FILES if filename not in cached_files(repo)]
    _check_writable(cache_dir(), f"the Hugging Face cache {cache_dir()}",
                    "set HF_HOME (or MINIGPT_WEIGHTS) to a folder you can write to")
    with _no_empty_folders_left(cache_dir()), _quiet_hub():
        sizes, commit = _ask_sizes(name, repo, missing, None)
        snapshot = cache_repo_folder(repo) / "snapshots" / commit if commit else cache_repo_folder(repo)
        if report is not None:
            report(_announcement(name, repo, sizes, snapshot))
        snapshot = [_download_file(name, repo, filename, None) for filename in missing][-1].parent
        for filename in CHECKPOINT_FILES:  # main moved on since the other file was cached: this revision's too
            if not (snapshot / filename).is_file():
                _download_file(name, repo, filename, None)
    return snapshot


def _packaged(name: str) -> Path:
    folder = PACKAGED_MODELS[name]
    if not all((folder / filename).is_file() for filename in CHECKPOINT_FILES):
        raise FileNotFoundError(
            f"the model {name!r} ships with minigpt in {folder}, but that folder lacks config.json or "
            f"model.safetensors; reinstall minigpt (pip install -e . in its checkout)."
        )
    return folder


def _ask_sizes(name: str, repo: str, filenames: list[str], folder: Path | None) -> tuple[dict[str, int | None], str]:
    """Each file's size from one HEAD request to the hub, which must answer within the time allowed in all,
    and the commit of the repo's main revision ("" if the hub did not say). folder None: the cache.

    The requests run in a daemon thread, because no HTTP timeout bounds the name lookup that comes first;
    the caller waits for it no longer than the time allowed, then gives up with one sentence.
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    if constants.HF_HUB_OFFLINE:  # no request at all, as huggingface_hub defines offline mode
        raise DownloadError(_no_hub_sentence(name, repo, folder, "HF_HUB_OFFLINE is set"))
    seconds = _answer_seconds()
    sizes: dict[str, int | None] = {}
    commits: list[str] = []
    failure: list[tuple[str, Exception]] = []  # the file whose request failed, and why

    def ask():
        for filename in filenames:
            try:
                url = hf_hub_url(repo, filename)  # its own timeout a second later: the join below decides
                metadata = get_hf_file_metadata(url, timeout=seconds + 1)
                sizes[filename] = metadata.size
                commits.append(metadata.commit_hash or "")
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
    return sizes, commits[0]


def _answer_seconds() -> float:
    from huggingface_hub import constants

    if constants.HF_HUB_ETAG_TIMEOUT != constants.DEFAULT_ETAG_TIMEOUT:  # set by the user: theirs wins
        return float(constants.HF_HUB_ETAG_TIMEOUT)
    return ANSWER_SECONDS


def _answered(err: Exception) -> bool:
    """True when the error is the hub's answer (an HTTP status, a bad repo id), False when no answer came."""
    from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError, HFValidationError

    return isinstance(err, (HfHubHTTPError, HFValidationError, EntryNotFoundError))


def _download_file(name: str, repo: str, filename: str, folder: Path | None) -> Path:
    """One hf_hub_download call, into the folder or else the Hugging Face cache (revision main, so that
    refs/main names the snapshot for transformers too); its errors become one sentence that says what to do."""
    # Imported here: only a download needs huggingface_hub, loading a local checkpoint does not.
    from huggingface_hub import hf_hub_download

    where = {"local_dir": folder} if folder is not None else {"cache_dir": cache_dir(), "revision": "main"}
    try:
        return Path(hf_hub_download(repo, filename, **where))
    except Exception as err:
        raise _refusal(err, name, repo, filename, folder) from err


def _refusal(err: Exception, name: str, repo: str, filename: str, folder: Path | None) -> Exception:
    """huggingface_hub's error as one sentence that says what to do. folder None: the Hugging Face cache."""
    from huggingface_hub import constants
    from huggingface_hub.utils import (EntryNotFoundError, HFValidationError, LocalEntryNotFoundError,
                                       RepositoryNotFoundError)

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
            f"in {_by_hand(name, folder)}."
        )
    if isinstance(err, EntryNotFoundError):
        return DownloadError(
            f"the hub repo {repo} has no {filename}, so minigpt cannot load it; pass a repo or folder "
            f"holding config.json and model.safetensors."
        )
    into = shown(folder or cache_repo_folder(repo))
    return DownloadError(  # network dropped mid-file, hub error, disk full, ...
        f"downloading {filename} of {repo} into {into} failed ({type(err).__name__}: {_first_line(err)}); "
        f"no partial file was kept, so trying again starts afresh."
    )


def _no_hub_sentence(name: str, repo: str, folder: Path | None, reason: str) -> str:
    """The one sentence for a hub out of reach: which two files to place where, and the model that needs none.
    Into the cache (folder None), an entry there that cannot be used is named, with how to mend it."""
    from huggingface_hub import constants

    tiny = ("or use tiny, the small model that ships with minigpt and needs no download (--model tiny, or "
            "minigpt.load(\"tiny\") in Python).")
    fault = cache_fault(repo) if folder is None else None
    if fault is not None:
        return (f"cannot download {name} because {reason}, and the copy in the Hugging Face cache cannot be used: "
                f"{fault}; run `minigpt download {name}` where the hub can be reached (or delete "
                f"{shown(cache_repo_folder(repo))} to start afresh), {tiny}")
    return (f"cannot download {name} because {reason}; copy config.json and model.safetensors from "
            f"{constants.ENDPOINT}/{repo}/tree/main into {_by_hand(name, folder)}, {tiny}")


def _by_hand(name: str, folder: Path | None) -> str:
    """Where to place files by hand: the weights folder, or one the user names in MINIGPT_WEIGHTS (the
    Hugging Face cache is huggingface_hub's to write)."""
    if folder is not None:
        return shown(folder)
    return f"a folder DIR{os.sep}{subfolder(name)}{os.sep} and set MINIGPT_WEIGHTS=DIR"


def _announcement(name: str, repo: str, sizes: dict[str, int | None], folder: Path) -> str:
    """"downloading gpt2 (config.json and model.safetensors, 548 MB) from https://... into weights/gpt2/"."""
    from huggingface_hub import constants

    what = " and ".join(sorted(sizes))
    if all(size is not None for size in sizes.values()):
        what += f", {_size(sum(sizes.values()))}"
    return f"downloading {name} ({what}) from {constants.ENDPOINT}/{repo} into {shown(folder)}"


@contextmanager
def _quiet_hub():
    """huggingface_hub as minigpt's requests need it: its warnings off (its "Retrying in 1s" lines would come
    before our one sentence), its progress bar off when TQDM_DISABLE is set (a non-empty value, as tqdm reads
    it), and its telemetry off: no request but for the files (huggingface_hub otherwise fetches a registry of
    AI agents, /api/agent-harnesses, once a day, with a timeout of its own)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from huggingface_hub.utils import logging as hub_logging

    verbosity, telemetry_off = hub_logging.get_verbosity(), constants.HF_HUB_DISABLE_TELEMETRY
    hub_logging.set_verbosity_error()
    constants.HF_HUB_DISABLE_TELEMETRY = True
    hide_bar = bool(os.environ.get("TQDM_DISABLE")) and not are_progress_bars_disabled()
    if hide_bar:
        disable_progress_bars()
    try:
        yield
    finally:
        hub_logging.set_verbosity(verbosity)
        constants.HF_HUB_DISABLE_TELEMETRY = telemetry_off
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


def _check_writable(folder: Path, what: str, fix: str) -> None:
    """Prove, before any network call and creating nothing, that downloads could go into the folder: the nearest
    folder on the way to it that exists must be a folder we can write into."""
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a directory", str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise DownloadError(f"cannot write to {what} ({err.strerror or err}); {fix}.") from err


@contextmanager
def _no_empty_folders_left(folder: Path):
    """The folders a download creates on the way to `folder`, and below it, are removed again if the download
    fails and they are empty: a refused name or a failed first download leaves no empty folder behind."""
    new = [path for path in (folder, *folder.parents) if not path.exists()]
    try:
        yield
    except BaseException:
        if new:  # new[-1]: the outermost folder that did not exist; all below it is the download's own
            for path in sorted((p for p in new[-1].rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _remove_if_empty(path)
            _remove_if_empty(new[-1])
        raise


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or already gone
        pass


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


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(".") if lines else "no details"

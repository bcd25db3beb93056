"""Downloads of the standard CycleGAN, pix2pix and StarGAN v2 datasets, by name, into a cache folder (stdlib only).

`ensure_dataset("horse2zebra", "unaligned")` returns `<cache>/cyclegan/horse2zebra` (holding trainA, trainB, testA,
testB), downloading and unpacking it on first use; `ensure_dataset("edges2shoes", "aligned")` returns
`<cache>/pix2pix/edges2shoes` (train, val); `ensure_dataset("afhq", "domains")` returns `<cache>/stargan_v2/afhq`
(train/<domain>, val/<domain>: cat, dog, wild; StarGAN v2's AFHQ). The cache is `$LIT_GAN_DATA`, else
`~/.cache/lit_gan/datasets`. The server of the CycleGAN and pix2pix datasets is `$LIT_GAN_DATASET_URL`, else
`http://efrosgans.eecs.berkeley.edu`; a mirror (of all of them, AFHQ too) must serve the paths
`/cyclegan/datasets/<name>.zip`, `/pix2pix/datasets/<name>.tar.gz` and `/stargan_v2/datasets/afhq.zip`, possibly under a
prefix.

Atomicity: the archive is streamed to a `.part` file and unpacked into a temporary folder, both inside the cache;
only a checked dataset folder is moved into place, with one `os.replace`. A dataset folder therefore exists only
when complete, and its existence is the completion signal (no marker file).

Concurrency: one process downloads while the others (e.g. DDP ranks) wait for the lock file `.<name>.lock` beside
the dataset folder. The holder touches the lock while it works; a lock untouched for `STALE_LOCK_S` seconds (left
by a killed process) is broken. Stale `.part` files and temporary folders are removed by the next lock holder.
"""

import contextlib
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from http.client import HTTPException
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

Layout = Literal["unaligned", "aligned", "domains"]

SERVER = "http://efrosgans.eecs.berkeley.edu"
CACHE_ENV = "LIT_GAN_DATA"  # cache folder override
URL_ENV = "LIT_GAN_DATASET_URL"  # server (mirror) override
TIMEOUT_S = 30.0  # connect and per-read timeout
STALE_LOCK_S = 300.0  # a lock file untouched this long belongs to a dead process
LOCK_POLL_S = 0.5
CHUNK_BYTES = 1 << 20

GROUPS: dict[str, str] = {"unaligned": "cyclegan", "aligned": "pix2pix", "domains": "stargan_v2"}  # cache subfolder
REQUIRED: dict[str, tuple[str, ...]] = {"unaligned": ("trainA", "trainB"), "aligned": ("train",), "domains": ("train",)}
NOTES = {
    "cityscapes": "The authors do not redistribute Cityscapes (license): get it from https://cityscapes-dataset.com "
    "and convert it with datasets/prepare_cityscapes_dataset.py from the CycleGAN repository."
}

DATASETS: dict[tuple[str, str], str] = {}  # (name, layout) -> archive URL


class DatasetDownloadError(RuntimeError):
    """A dataset that could not be downloaded or unpacked; the message says how to install it by hand."""


def _check_layout(layout: str) -> None:
    if layout not in GROUPS:
        raise ValueError(f"unknown dataset layout {layout!r}; valid layouts: {', '.join(GROUPS)}")


def register_dataset(name: str, layout: Layout, url: str) -> None:
    """Add a dataset archive (a `.zip` or `.tar[.gz]` holding one dataset folder) to `DATASETS`.

    Raises:
        ValueError: if the layout is unknown or (name, layout) is already registered.
    """
    _check_layout(layout)
    if (name, layout) in DATASETS:
        raise ValueError(f"dataset {name!r} ({layout}) is already registered, at {DATASETS[name, layout]}")
    DATASETS[name, layout] = url


for _name in (
    "ae_photos", "apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
    "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "mini", "mini_pix2pix",
    "mini_colorization",
):  # fmt: skip
    register_dataset(_name, "unaligned", f"{SERVER}/cyclegan/datasets/{_name}.zip")
for _name in ("night2day", "edges2handbags", "edges2shoes", "facades", "maps"):
    register_dataset(_name, "aligned", f"{SERVER}/pix2pix/datasets/{_name}.tar.gz")
# StarGAN v2's Animal Faces-HQ (clovaai/stargan-v2, download.sh): 512 px, train/{cat,dog,wild} and val/{cat,dog,wild}
register_dataset("afhq", "domains", "https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=1")


def dataset_names(layout: Layout) -> list[str]:
    """Sorted names of the registered datasets with this layout."""
    return sorted(name for name, lay in DATASETS if lay == layout)


def dataset_url(name: str, layout: Layout, base_url: str | None = None) -> str:
    """The archive URL of a dataset, its server replaced by `base_url` or `$LIT_GAN_DATASET_URL` when set.

    Raises:
        ValueError: for an unknown name, listing the valid names (and the other layout if the name is there).
    """
    _check_layout(layout)
    if (name, layout) not in DATASETS:
        other = next(lay for lay in GROUPS if lay != layout)
        hint = f" {name} is a {GROUPS[other]} ({other}) dataset: set data.mode: {other}."
        hint = hint if (name, other) in DATASETS else ""
        raise ValueError(
            f"unknown {GROUPS[layout]} ({layout}) dataset {name!r}.{hint} "
            f"Valid names: {', '.join(dataset_names(layout))}"
        )
    url, base = DATASETS[name, layout], base_url or os.environ.get(URL_ENV)
    archive = PurePosixPath(urllib.parse.urlsplit(url).path).name  # e.g. horse2zebra.zip
    return f"{base.rstrip('/')}/{GROUPS[layout]}/datasets/{archive}" if base else url


def dataset_dir(name: str, layout: Layout, cache_dir: str | os.PathLike | None = None) -> Path:
    """`<cache_dir>/<cyclegan|pix2pix>/<name>`; `cache_dir` defaults to `$LIT_GAN_DATA` or ~/.cache/lit_gan/datasets."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lit_gan" / "datasets"
    return Path(cache_dir).expanduser() / GROUPS[layout] / name


def is_complete(folder: Path, layout: Layout) -> bool:
    """Whether `folder` holds the folders of `layout` (trainA and trainB, or train)."""
    return all((folder / sub).is_dir() for sub in REQUIRED[layout])


def ensure_dataset(
    name: str,
    layout: Layout,
    cache_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
) -> Path:
    """The folder of a standard dataset, downloaded and unpacked on first use; no network access once there.

    Args:
        name: dataset name, one of `dataset_names(layout)`.
        layout: "unaligned" (CycleGAN: trainA/trainB/testA/testB) or "aligned" (pix2pix: train/val/test, A|B).
        cache_dir: cache folder; defaults to `$LIT_GAN_DATA`, else ~/.cache/lit_gan/datasets.
        base_url: server (mirror) to download from; defaults to `$LIT_GAN_DATASET_URL`, else the authors' server.

    Returns:
        `<cache_dir>/<cyclegan|pix2pix>/<name>`, the folder directly holding trainA/... or train/...

    Raises:
        ValueError: for an unknown name.
        DatasetDownloadError: if the download or the archive fails; the message says how to install it by hand.
        FileExistsError: if the dataset folder exists but is incomplete (not made by this function).
    """
    url = dataset_url(name, layout, base_url)
    target = dataset_dir(name, layout, cache_dir)
    if is_complete(target, layout):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target.parent / f".{name}.lock", name) as touch:
        if is_complete(target, layout):  # another process finished it while we waited
            return target
        if target.exists():
            raise FileExistsError(
                f"{target} exists but lacks {' or '.join(REQUIRED[layout])}; delete it to download {name} again, "
                "or complete it by hand"
            )
        for stale in [*target.parent.glob(f".{name}.*.part"), *target.parent.glob(f".{name}.*.extract")]:
            _remove(stale)  # left by a killed process; safe to remove while we hold the lock
        _install(name, layout, url, target, touch)
    return target


def _install(name: str, layout: Layout, url: str, target: Path, touch: Callable[[], None]) -> None:
    """Download `url` and move its checked dataset folder to `target`; temporary files go in every case."""
    fd, part = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
    os.close(fd)
    extracted = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}.", suffix=".extract"))
    try:
        try:
            _download(url, Path(part), f"{name} ({layout})", touch)
        except (OSError, HTTPException) as err:
            raise _failure(name, layout, url, target, f"download failed: {type(err).__name__}: {err}") from err
        try:
            _extract(Path(part), extracted, urllib.parse.urlsplit(url).path.endswith(".zip"), touch)
            root = _find_root(extracted, name, layout)
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as err:
            raise _failure(name, layout, url, target, f"bad archive: {type(err).__name__}: {err}") from err
        try:
            os.replace(root, target)
        except OSError:
            if not is_complete(target, layout):  # else another process won the race with the same content
                raise
    finally:
        _remove(Path(part))
        _remove(extracted)


def _failure(name: str, layout: Layout, url: str, target: Path, problem: str) -> DatasetDownloadError:
    first, *others = REQUIRED[layout]
    beside = f" (beside {', '.join(others)})" if others else ""
    note = f" {NOTES[name]}" if name in NOTES else ""
    return DatasetDownloadError(
        f"could not install dataset {name!r} ({layout}) from {url}: {problem}.{note}\n"
        f"To install it by hand: download {url} and unpack it so that {target / first} exists{beside}, then run "
        f"again. Or set data.root to an existing dataset folder instead, or {URL_ENV} to a mirror."
    )


def _download(url: str, dest: Path, label: str, touch: Callable[[], None]) -> None:
    """Stream `url` to `dest`, printing progress to stderr every 5%; checks the size against Content-Length."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        done, shown = 0, -1
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            done += len(chunk)
            touch()
            step = 100 * done // total // 5 if total else done // (100 * CHUNK_BYTES)
            if step != shown:
                shown, percent = step, f" ({100 * done // total}%)" if total else ""
                print(f"downloading {label}: {done / 1e6:.1f} MB{percent}", file=sys.stderr, flush=True)
    if total is not None and done != total:
        raise ConnectionError(f"transfer interrupted after {done} of {total} bytes")


def _extract(archive: Path, dest: Path, is_zip: bool, touch: Callable[[], None]) -> None:
    """Unpack a zip or tar archive into `dest`, refusing members with absolute paths or `..`."""
    if is_zip:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(info.filename)
                zf.extract(info, dest)
                touch()
        return
    with tarfile.open(archive) as tar:
        for member in tar:
            _check_member(member.name)
            tar.extract(member, dest, filter="data")  # also refuses links that leave `dest`
            touch()


def _check_member(member: str) -> None:
    path = PurePosixPath(member.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or PureWindowsPath(member).drive:
        raise ValueError(f"unsafe archive member {member!r} (absolute path or '..'); refusing to unpack it")


def _find_root(extracted: Path, name: str, layout: Layout) -> Path:
    """The folder in the unpacked archive that holds the layout's folders, `<name>/` first, then up to 2 levels."""
    candidates = [extracted / name, extracted, *sorted(extracted.glob("*")), *sorted(extracted.glob("*/*"))]
    folders = [c for c in candidates if c.is_dir()]
    for folder in folders:
        if is_complete(folder, layout):
            return folder
    required = REQUIRED[layout]
    best = max(folders, key=lambda f: sum((f / sub).is_dir() for sub in required))
    missing = [sub for sub in required if not (best / sub).is_dir()]
    found = sorted(p.name for p in best.iterdir() if p.is_dir())
    where = best.relative_to(extracted).as_posix()
    raise ValueError(
        f"the archive lacks {', '.join(missing)}: expected a folder holding {', '.join(required)}, "
        f"best match {where}/ holds {', '.join(found) or 'no folder'}"
    )


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextlib.contextmanager
def _lock(path: Path, name: str) -> Iterator[Callable[[], None]]:
    """Hold the lock file `path` (O_EXCL), waiting while a live process holds it; yields a `touch()` heartbeat."""
    announced = False
    while True:
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > STALE_LOCK_S:
                    path.unlink()  # its owner died: nobody touched it for STALE_LOCK_S
                    continue
            if not announced:
                print(f"waiting for another process to download {name} (lock file {path})", file=sys.stderr)
                announced = True
            time.sleep(LOCK_POLL_S)

    def touch() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)

    try:
        yield touch
    finally:
        path.unlink(missing_ok=True)

"""The image check before training: every image file decoded once, problems reported, unreadable files skipped.

Unreadable files (corrupt or truncated, empty, not images) are skipped; with preprocess "crop", images smaller than
the crop are upscaled (the other modes resize every image anyway). `ImageReport` words the warning, or with
`data.strict` the error, that lists them.
"""

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pytorch_lightning.utilities import rank_zero_info

from lit_gan.data.images import FileImages
from lit_gan.image_io import read_image, read_problem

MAX_LISTED = 20  # files listed in the warning; the strict error lists all
LARGE_SCAN = 2000  # say that the check is running when it checks at least this many files


class ImageCheckWarning(UserWarning):
    """Image files were skipped, upscaled or ignored by the check before training."""


@dataclass(frozen=True)
class ImageProblem:
    """One image file that cannot be used as it is.

    Args:
        path: the file.
        folder: the dataset folder it belongs to.
        reason: what is wrong, e.g. "empty file (0 bytes)" or "20x24 px, smaller than data.crop_size 32".
        skipped: True for an unreadable file (left out), False for one used after upscaling.
    """

    path: Path
    folder: Path
    reason: str
    skipped: bool


@dataclass
class ImageReport:
    """The outcome of `check_files`: problems, image counts and ignored non-image files per folder."""

    counts: dict[Path, int] = field(default_factory=dict)
    problems: list[ImageProblem] = field(default_factory=list)
    ignored: dict[Path, list[Path]] = field(default_factory=dict)

    @property
    def skipped(self) -> set[Path]:
        return {p.path for p in self.problems if p.skipped}

    def warning(self) -> str | None:
        """The message for the user (at most `MAX_LISTED` files listed), or None when there is nothing to say."""
        lines, budget = [], MAX_LISTED
        for folder, count in self.counts.items():
            for skipped, what in ((True, "cannot be read and are skipped"), (False, "are upscaled before cropping")):
                some = [p for p in self.problems if p.folder == folder and p.skipped == skipped]
                if some:
                    lines.append(f"{len(some)} of {_count(count, 'image file')} in {folder} {what}:")
                    lines += [f"  {p.path.relative_to(folder)}: {p.reason}" for p in some[:budget]]
                    lines += [f"  ... and {len(some) - budget} more"] if len(some) > budget else []
                    budget = max(0, budget - len(some))
        lines += _ignored_lines(self.ignored)
        if not lines:
            return None
        if self.problems:
            lines.append("Set data.strict: true to stop instead, listing every problem file.")
        return "\n".join(["Image check before training:", *lines])

    def strict_error(self) -> str:
        """The error for data.strict: every problem file with its reason."""
        return "\n".join(
            [
                f"data.strict is true and {_count(len(self.problems), 'image file')} cannot be used as stored; "
                "fix or remove them, or set data.strict: false to skip unreadable files and upscale small ones:",
                *(f"  {p.path}: {p.reason}" for p in self.problems),
            ]
        )


def _ignored_lines(ignored: dict[Path, list[Path]]) -> list[str]:
    lines = []
    for folder, files in ignored.items():
        names = ", ".join(str(f.relative_to(folder)) for f in files[:3]) + (", ..." if len(files) > 3 else "")
        lines.append(f"{_count(len(files), 'file')} in {folder} ignored (no image extension): {names}")
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def inspect_image(path: Path) -> tuple[int, int] | str:
    """(width, height) of the decoded image, or why it cannot be decoded."""
    try:
        return read_image(path).size
    except Exception as err:  # any decoder failure makes the file unusable
        return read_problem(path, err)


def check_files(sources: Iterable[FileImages], min_size: int | None = None) -> ImageReport:
    """Decode every file of `sources` once, on a thread pool (PIL releases the GIL while decoding).

    Args:
        sources: the file sources of the splits in use; pair sources are checked per half.
        min_size: the crop size images smaller than which are reported as upscaled; None to not check sizes.
    """
    sources = list({id(s): s for s in sources}.values())
    paths = list(dict.fromkeys(p for s in sources for p in s.paths))
    if len(paths) >= LARGE_SCAN:
        rank_zero_info(f"Checking {len(paths)} image files before training (decoding each once)")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = dict(zip(paths, pool.map(inspect_image, paths)))
    report = ImageReport()
    seen: set[Path] = set()
    for source in sources:
        folder = source.folder or Path(os.path.commonpath([p.parent for p in source.paths]))
        report.counts[folder] = report.counts.get(folder, 0) + len(source.paths)
        if source.ignored:
            report.ignored[folder] = source.ignored
        for path in source.paths:
            reason = _problem(results[path], source.pairs, min_size)
            if reason is not None and path not in seen:
                seen.add(path)
                report.problems.append(ImageProblem(path, folder, *reason))
    return report


def _problem(result: tuple[int, int] | str, pairs: bool, min_size: int | None) -> tuple[str, bool] | None:
    """(reason, skipped) for one file's check result, or None when the file is fine."""
    if isinstance(result, str):
        return result, True
    w, h = result
    if pairs and w < 2:
        return f"{w} px wide: too narrow to hold A|B side by side", True
    w = w // 2 if pairs else w
    if min_size is not None and min(w, h) < min_size:
        half = " (each half)" if pairs else ""
        return f"{w}x{h} px{half}, smaller than data.crop_size {min_size}", False
    return None


def unusable_sources(sources: Sequence[FileImages], report: ImageReport) -> list[FileImages]:
    """The sources none of whose files can be read."""
    skipped = report.skipped
    return [s for s in sources if all(p in skipped for p in s.paths)]

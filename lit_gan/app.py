"""`python -m lit_gan app [PATH ...]`: try trained styles on your own photos in the browser (Gradio; `pip install
'lit_gan[app]'`).

The app is a view on `lit_gan.serving`: pick a run and checkpoint, drop in photos, see each beside its translation,
set the strength, the style (StarGAN v2), the output size and the generator (EMA or raw), download the results one by
one or as a zip, and compare runs on one photo. It binds to 127.0.0.1, serves its own fonts and scripts (no request
leaves the machine: it works air-gapped) and reads checkpoints weights-only.
"""

import importlib.util
import os
import shutil
import socket
import tempfile
import time
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path

from lit_gan.data.predict import find_predict_files
from lit_gan.runs import CheckpointError, atomic_write
from lit_gan.serving import (
    Choice,
    Gate,
    Models,
    ServingError,
    StyleRequest,
    find_choices,
    open_photo,
    resize_long_side,
)

SIZES = ["original", "256", "512", "768", "1024"]
"""Output sizes (long side, px) the app offers; "original" keeps each photo's size, as `predict` does."""
DEFAULT_SIZE = "512"
STYLE_MODES = ["latent code", "stored style", "blend of two styles", "reference image"]
STRENGTH = (
    "multi-style models: from the photo's own style code (0) to the chosen style (1); other models: the photo "
    "(0) blended with its translation (1)"
)
KEPT_RESULTS = 32
"""Result folders kept on disk (the oldest is deleted when a new one is written)."""


class AppError(ValueError):
    """The app cannot start (Gradio missing, a bad path or option); the message says how to fix it."""


def app_command(
    *paths: Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    max_file_size: int = 50,
    max_pixels: int = 25_000_000,
    queue: int = 8,
    device: str | None = None,
    bank: Path = Path("styles"),
) -> int:
    """Try trained styles on your own photos in the browser (Gradio): pick a run, drop in photos, download results.

    Args:
        paths: run folders, folders of runs, checkpoints (.ckpt) or exported generators (.pt2); default: the runs
            under runs/lit_gan, newest first.
        host: the address to listen on; 127.0.0.1 lets only this machine in (0.0.0.0: every network, with --auth).
        port: the port to listen on (the next free one when taken).
        auth: USER:PASSWORD that the browser must give (default: none).
        max_file_size: largest upload, in MB.
        max_pixels: largest photo, in pixels (width x height), checked before it is decoded.
        queue: requests that may wait while one is translated; more are refused with a "busy" message.
        device: where the models run, e.g. cpu or cuda (default: the GPU where there is one).
        bank: the folder of stored styles (StarGAN v2), as for predict's --model.predict_bank.

    Returns:
        0 when the app is stopped (Ctrl-C).
    """
    credentials = parse_auth(auth)
    if max_file_size < 1 or max_pixels < 1 or queue < 0:
        raise AppError("--max_file_size and --max_pixels must be >= 1 and --queue >= 0")
    choices = find_choices(paths)  # a bad path fails here, before Gradio starts
    demo = build_app(choices, Models(device), Gate(queue), max_pixels=max_pixels, bank=bank)
    demo.queue(max_size=max(64, 4 * queue), default_concurrency_limit=None)
    launch(demo, host, free_port(host, port), credentials, max_file_size)
    return 0


def free_port(host: str, port: int, tries: int = 100) -> int:
    """`port`, or the next one free on `host` when it is taken."""
    for candidate in range(port, port + tries):
        with socket.socket() as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return candidate
    raise AppError(f"ports {port}-{port + tries - 1} on {host} are all taken: give a free one with --port")


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """("user", "password") from "user:password"."""
    if auth is None:
        return None
    user, sep, password = auth.partition(":")
    if not (user and sep and password):
        raise AppError(f"--auth {auth!r}: give USER:PASSWORD")
    return user, password


def gradio():
    """The gradio module, with its usage statistics off (they would call gradio's servers)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if importlib.util.find_spec("gradio") is None:
        raise AppError("the app needs Gradio: pip install 'lit_gan[app]'")
    import gradio as gr

    return gr


def theme():
    """Gradio's default theme with the system's fonts instead of Google's (which the browser would download)."""
    gr = gradio()
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "Consolas", "monospace"]
    )


def launch(demo, host: str, port: int, auth: tuple[str, str] | None, max_file_size: int, block: bool = True):
    """Start `demo` on `host`:`port` (returns at once with `block` false; the app then stops with the process)."""
    return demo.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        max_file_size=f"{max_file_size}mb",
        share=False,
        show_error=True,
        theme=theme(),
        footer_links=[],
        prevent_thread_lock=not block,
        quiet=False,
    )


# -- the page ---------------------------------------------------------------------------------------------------------


def build_app(
    choices: Sequence[Choice],
    models: Models,
    gate: Gate,
    max_pixels: int = 25_000_000,
    bank: Path = Path("styles"),
    results: Path | None = None,
):
    """The app's page (a `gradio.Blocks`) over `choices`; not yet started (see `launch`)."""
    gr = gradio()
    by_label = {c.label: c for c in choices}
    results = results or Path(tempfile.gettempdir()) / "lit_gan_app"

    def pick(label: str) -> Choice:
        if label not in by_label:
            raise gr.Error(f"choose a run (got {label!r})")
        return by_label[label]

    def load(label: str, checkpoint: str):
        choice = pick(label)
        if checkpoint and checkpoint not in choice.checkpoints:
            raise gr.Error(f"checkpoint {checkpoint!r}: {choice.label} has {', '.join(choice.checkpoints)}")
        path = choice.checkpoints[checkpoint] if checkpoint else next(iter(choice.checkpoints.values()))
        try:
            return models.get(path)
        except (CheckpointError, ServingError) as err:
            raise gr.Error(str(err).splitlines()[0], print_exception=False) from None

    def on_run(label: str):
        choice = pick(label)
        names = list(choice.checkpoints)
        return gr.update(choices=names, value=names[0]), f"**{choice.label}**: {choice.describe()}"

    def on_checkpoint(label: str, checkpoint: str):
        model = load(label, checkpoint)
        ema = gr.update(choices=["EMA", "raw"] if model.has_ema else ["raw"], value="EMA" if model.has_ema else "raw")
        styles = stored_styles(bank)
        return (
            gr.update(choices=model.directions, value=model.directions[0]),
            ema,
            gr.update(visible=model.styles),
            gr.update(choices=styles, value=styles[0] if styles else None),
            gr.update(choices=styles, value=styles[1] if len(styles) > 1 else None),
            f"loaded {model.path.name} in {model.load_seconds:.2f} s on {models.device.type}",
        )

    def stylize(label, checkpoint, direction, generator, files, folder, strength, size, mode, style_a, style_b,
                blend, reference, seed, progress=gr.Progress()):  # fmt: skip
        start = time.perf_counter()
        model = load(label, checkpoint)
        direction = direction or model.directions[0]
        photos, problems = gather_photos(files, folder, max_pixels)
        if not photos:
            raise gr.Error("; ".join(problems) if problems else "drop in one or more photos first",
                           print_exception=False)  # fmt: skip
        style = style_request(model.styles, mode, style_a, style_b, blend, reference, seed, bank)
        long_side = None if size == "original" else int(size)
        images = [resize_long_side(image, long_side) for _, image in photos]
        try:
            with gate.turn():
                progress(0.1, desc="translating")
                outputs = model.translate(images, direction, float(strength), generator != "raw", style)
        except (ServingError, CheckpointError, FileNotFoundError, ValueError) as err:
            raise gr.Error(str(err).splitlines()[0], print_exception=False) from None
        folder_out = new_results_folder(results)
        files_out = []
        for (name, _), output in zip(photos, outputs):
            path = folder_out / f"{Path(name).stem}-{direction}.png"
            atomic_write(path, lambda tmp, output=output: output.save(tmp, format="PNG"))
            files_out.append(str(path))
        archive = folder_out / f"lit_gan-{direction}.zip"
        atomic_write(archive, lambda tmp: write_zip(tmp, files_out))
        gallery = [item for (name, image), out in zip(photos, files_out)
                   for item in ((image, name), (out, f"{name} → {direction}"))]  # fmt: skip
        seconds = time.perf_counter() - start
        status = [f"{len(outputs)} photo(s) translated in {seconds:.2f} s ({model.device.type}), saved in {folder_out}"]
        status += [f"skipped {problem}" for problem in problems]
        return gallery, "\n\n".join(status), files_out, str(archive)

    def compare(labels, files, size, progress=gr.Progress()):
        if not labels:
            raise gr.Error("choose the runs to compare", print_exception=False)
        photos, problems = gather_photos(files, "", max_pixels)
        if not photos:
            raise gr.Error("; ".join(problems) if problems else "drop in a photo first", print_exception=False)
        name, image = photos[0]
        image = resize_long_side(image, None if size == "original" else int(size))
        gallery = [(image, name)]
        lines = []
        for label in labels:
            choice = pick(label)
            model = load(label, next(iter(choice.checkpoints)))
            direction = model.directions[0]
            try:
                with gate.turn():
                    (output,) = model.translate([image], direction)
            except ServingError as err:
                raise gr.Error(str(err).splitlines()[0], print_exception=False) from None
            gallery.append((output, f"{choice.label} ({direction})"))
            lines.append(f"| {choice.label} | {next(iter(choice.checkpoints))} | {direction} | {choice.describe()} |")
        table = "| run | checkpoint | direction | metrics |\n|---|---|---|---|\n" + "\n".join(lines)
        return gallery, table

    labels = list(by_label)
    with gr.Blocks(title="lit_gan", analytics_enabled=False) as demo:
        gr.Markdown("# lit_gan: try a trained style on your photos")
        with gr.Tab("Stylize"):
            with gr.Row():
                run = gr.Dropdown(labels, value=labels[0], label="Run", scale=3, elem_id="run")
                first = list(choices[0].checkpoints)  # the choices follow the run; any is checked by `load`
                checkpoint = gr.Dropdown(first, value=first[0], label="Checkpoint", elem_id="checkpoint",
                                         allow_custom_value=True)  # fmt: skip
                direction = gr.Dropdown([], label="Direction", elem_id="direction", allow_custom_value=True)
                generator = gr.Radio(["EMA", "raw"], value="EMA", label="Generator", elem_id="generator")
            info = gr.Markdown(elem_id="run-info")
            with gr.Row():
                with gr.Column():
                    files = gr.File(file_count="multiple", label="Photos", elem_id="photos")
                    folder = gr.Textbox(label="or a folder on this machine", placeholder="/path/to/photos",
                                        elem_id="folder")  # fmt: skip
                with gr.Column():
                    strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength", elem_id="strength", info=STRENGTH)
                    size = gr.Dropdown(SIZES, value=DEFAULT_SIZE, label="Output size (long side, px)", elem_id="size")
                    with gr.Group(visible=False) as style_group:
                        mode = gr.Radio(STYLE_MODES, value=STYLE_MODES[0], label="Style", elem_id="style-mode")
                        seed = gr.Number(0, precision=0, label="Latent code (seed)", elem_id="seed")
                        style_a = gr.Dropdown([], label="Stored style", elem_id="style-a", allow_custom_value=True,
                                              visible=False)  # fmt: skip
                        style_b = gr.Dropdown([], label="Second style (blend)", elem_id="style-b",
                                              allow_custom_value=True, visible=False)  # fmt: skip
                        blend = gr.Slider(0, 1, value=0.5, step=0.05, label="Blend (share of the second style)",
                                          visible=False)  # fmt: skip
                        reference = gr.Image(type="filepath", label="Reference image", elem_id="reference",
                                             visible=False)  # fmt: skip
            button = gr.Button("Stylize", variant="primary", elem_id="stylize")
            status = gr.Markdown(elem_id="status")
            gallery = gr.Gallery(label="Photo | result", columns=2, elem_id="gallery", format="png")
            with gr.Row():
                downloads = gr.File(label="Results", file_count="multiple", interactive=False, elem_id="downloads")
                archive = gr.File(label="All results (zip)", interactive=False, elem_id="zip")
        with gr.Tab("Compare runs"):
            runs = gr.Dropdown(labels, value=labels[: min(2, len(labels))], multiselect=True, label="Runs",
                               elem_id="compare-runs")  # fmt: skip
            with gr.Row():
                compare_photo = gr.File(file_count="multiple", label="Photo", elem_id="compare-photo")
                compare_size = gr.Dropdown(SIZES, value=DEFAULT_SIZE, label="Output size (long side, px)")
            compare_button = gr.Button("Compare", variant="primary", elem_id="compare")
            compare_gallery = gr.Gallery(label="Photo and each run's result", columns=4, elem_id="compare-gallery",
                                         format="png")  # fmt: skip
            compare_table = gr.Markdown(elem_id="compare-table")

        mode.change(style_controls, [mode], [seed, style_a, style_b, blend, reference])
        loaded = [direction, generator, style_group, style_a, style_b, status]
        run.change(on_run, [run], [checkpoint, info]).then(on_checkpoint, [run, checkpoint], loaded)
        checkpoint.input(on_checkpoint, [run, checkpoint], loaded)
        demo.load(on_run, [run], [checkpoint, info]).then(on_checkpoint, [run, checkpoint], loaded)
        inputs = [run, checkpoint, direction, generator, files, folder, strength, size, mode, style_a, style_b, blend,
                  reference, seed]  # fmt: skip
        button.click(stylize, inputs, [gallery, status, downloads, archive], api_name="stylize")
        compare_button.click(compare, [runs, compare_photo, compare_size], [compare_gallery, compare_table],
                             api_name="compare")  # fmt: skip
    return demo


def gather_photos(files, folder: str | None, max_pixels: int) -> tuple[list[tuple[str, object]], list[str]]:
    """[(name, RGB image)] of the uploaded `files` (paths) and of the images in `folder` on this machine, and a
    message per file that could not be used (naming it)."""
    named: list[tuple[str, str]] = []
    for f in files or []:
        path = getattr(f, "name", f)  # a path, or a file object of older Gradio versions
        named.append((Path(path).name, path))
    problems: list[str] = []
    if folder and folder.strip():
        try:
            found, _ = find_predict_files(Path(folder.strip()).expanduser(), key="folder")
        except FileNotFoundError as err:
            problems.append(str(err).splitlines()[0])
            found = []
        named += [(f.name, str(f.path)) for f in found]
    photos = []
    for name, path in named:
        try:
            photos.append((name, open_photo(path, name, max_pixels)))
        except ServingError as err:
            problems.append(str(err))
    return photos, problems


def style_request(styles: bool, mode: str, style_a, style_b, blend, reference, seed, bank: Path) -> StyleRequest | None:
    """The style of a multi-style model's request from the page's style controls (None for other models)."""
    if not styles:
        return None
    gr = gradio()
    if mode == "stored style" or mode == "blend of two styles":
        if not style_a:
            raise gr.Error(f"no stored style chosen (styles in {bank}/: python -m lit_gan style add NAME ...)",
                           print_exception=False)  # fmt: skip
        spec = style_a
        if mode == "blend of two styles":
            if not style_b:
                raise gr.Error("choose a second style to blend with", print_exception=False)
            b = float(blend)
            spec = style_a if b <= 0 else style_b if b >= 1 else f"{style_a}:{1 - b},{style_b}:{b}"
        return StyleRequest(style=spec, bank=str(bank))
    if mode == "reference image":
        if not reference:
            raise gr.Error("drop in a reference image whose style to apply", print_exception=False)
        return StyleRequest(reference=str(reference))
    return StyleRequest(seed=int(seed or 0))


def style_controls(mode: str) -> tuple:
    """The style controls that `mode` uses, shown; the others hidden (seed, style, second style, blend, reference)."""
    gr = gradio()
    shown = (mode == STYLE_MODES[0], mode in STYLE_MODES[1:3], mode == STYLE_MODES[2], mode == STYLE_MODES[2],
             mode == STYLE_MODES[3])  # fmt: skip
    return tuple(gr.update(visible=visible) for visible in shown)


def stored_styles(bank: Path) -> list[str]:
    """The names of the styles in the bank folder."""
    return sorted(p.stem for p in Path(bank).glob("*.pt")) if Path(bank).is_dir() else []


def new_results_folder(results: Path) -> Path:
    """A new folder for one request's results under `results`, the oldest beyond `KEPT_RESULTS` deleted."""
    results.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in results.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in old[: max(0, len(old) - KEPT_RESULTS + 1)]:
        shutil.rmtree(stale, ignore_errors=True)
    folder = results / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    return folder


def write_zip(path: Path, files: Sequence[str]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for f in files:
            archive.write(f, Path(f).name)

"""`python -m lit_gan app`: the command's checks, and the app end to end in a real headless Chromium (Playwright)
against the app started on a free port with tiny trained runs: choose run and checkpoint, upload two photos, results
equal predict's, strength monotone, downloads and the zip, a text file renamed .jpg, a crafted checkpoint, comparing
runs, and no request leaving the local server.

The browser is Debian's `chromium` (`apt-get install chromium`; `.ci/run` installs it), driven by Playwright's Python
package (the dev extra) through `executable_path`: Playwright's own browser builds are never downloaded. The browser
test skips, saying why, where either is missing or Chromium cannot start. Set LIT_GAN_APP_SCREENSHOT to a path to keep
the screenshot (the README's `docs/app.png` was taken so, with LIT_GAN_APP_RUN naming a trained quickstart run and
LIT_GAN_APP_PHOTOS a folder of two photos).
"""

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from lit_gan.predict import stylize
from tests.helpers import write_images
from tests.test_checkpoint_safety import evil_checkpoint
from tests.test_styles import cli_error

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [  # Chromium's own background traffic (updates, sync, ...) off: this machine has no internet
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_the_app_command_refuses_bad_paths_and_options_in_one_line(tmp_path, monkeypatch, capsys):
    err = cli_error(monkeypatch, capsys, "app")
    assert err.count("\n") == 1 and err.startswith("error: no runs in runs/lit_gan: train one (python -m lit_gan fit")
    err = cli_error(monkeypatch, capsys, "app", str(tmp_path / "nowhere"))
    assert err.count("\n") == 1 and "nowhere does not exist" in err
    (tmp_path / "last.ckpt").write_bytes(b"")
    err = cli_error(monkeypatch, capsys, "app", str(tmp_path / "last.ckpt"), "--auth", "nopassword")
    assert err == "error: --auth 'nopassword': give USER:PASSWORD\n"


def test_the_app_command_says_how_to_install_gradio_where_it_is_missing(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    (tmp_path / "last.ckpt").write_bytes(b"")
    err = cli_error(monkeypatch, capsys, "app", str(tmp_path / "last.ckpt"))
    assert err == "error: the app needs Gradio: pip install 'lit_gan[app]'\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`python -m lit_gan app ARGS` on a free local port; (the process, its URL) once it answers."""
    port = free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "PYTHONPATH": str(REPO)}
    log = open(tmp_path / "app.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "lit_gan", "app", *args, "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited: {(tmp_path / 'app.log').read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process, url
        time.sleep(0.25)
    process.kill()
    raise AssertionError(f"the app did not answer in 120 s: {(tmp_path / 'app.log').read_text()}")


def chromium():
    """Playwright's Chromium launcher for Debian's chromium, or a skip saying what is missing."""
    executable = os.environ.get("LIT_GAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; or set LIT_GAN_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'")
    return sync_api, executable


def pixels(data) -> np.ndarray:
    image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data).convert("RGB")
    return np.asarray(image).astype(int)


@pytest.mark.slow
def test_the_app_in_a_browser(trained_checkpoint, tmp_path):
    sync_api, executable = chromium()
    run = Path(os.environ["LIT_GAN_APP_RUN"]) if "LIT_GAN_APP_RUN" in os.environ else None
    checkpoint = run / "checkpoints" / "last.ckpt" if run else trained_checkpoint("cyclegan")
    run = run or checkpoint.parent.parent
    other = trained_checkpoint("cyclegan", "--model.ema_decay=0.5").parent.parent
    evil = evil_checkpoint(tmp_path / "crafted" / "evil.ckpt", tmp_path / "marker")
    if "LIT_GAN_APP_PHOTOS" in os.environ:
        photos = sorted(Path(os.environ["LIT_GAN_APP_PHOTOS"]).iterdir())[:2]
    else:
        photos = [*write_images(tmp_path / "p1", 1, size=40, seed=1), *write_images(tmp_path / "p2", 1, 48, seed=2)]
        photos = [photos[0].rename(tmp_path / "first.png"), photos[1].rename(tmp_path / "second.png")]
    text = tmp_path / "holiday.jpg"
    text.write_text("not a photo, a text file renamed .jpg\n")
    expected = {}
    for photo in photos:
        written = stylize(checkpoint, photo, tmp_path / "predict", domain="A").written
        expected[photo.stem] = pixels(written[0])

    process, url = start_app(tmp_path, str(run), str(other), str(evil))
    requests: list[str] = []
    try:
        with sync_api.sync_playwright() as playwright:
            try:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            except sync_api.Error as err:
                pytest.skip(f"Chromium ({executable}) cannot start here: {str(err).splitlines()[0]}")
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url)
            status = page.locator("#status")

            def wait_status(text: str) -> str:
                page.wait_for_function("t => document.querySelector('#status')?.innerText.includes(t)", arg=text,
                                       timeout=60_000)  # fmt: skip
                return status.inner_text()

            def choose(element: str, option: str) -> None:
                page.locator(f"#{element} input").click()
                page.get_by_role("option", name=option, exact=True).click()

            def stylize_in_page(files: list[Path]) -> str:
                if page.locator("#photos button[aria-label=Clear]").count():
                    page.locator("#photos button[aria-label=Clear]").click()
                page.locator("#photos input[type=file]").set_input_files([str(f) for f in files])
                page.wait_for_timeout(300)
                before = status.inner_text()
                page.locator("#stylize").click()
                page.wait_for_function(  # a new result, and Gradio's progress timer gone
                    "b => { const t = document.querySelector('#status')?.innerText ?? '';"
                    " return t !== b && /^\\d+ photo\\(s\\) translated/.test(t); }",
                    arg=before,
                    timeout=60_000,
                )
                return status.inner_text()

            def result(i: int) -> bytes:
                href = page.locator("#downloads a").nth(i).get_attribute("href")
                response = page.request.get(href)
                assert response.ok
                return response.body()

            wait_status("loaded")
            labels = page.locator("#run input")
            run_label = labels.input_value()
            assert run.name in run_label
            choose("checkpoint", "last")
            wait_status("loaded last.ckpt")
            choose("size", "original")
            assert stylize_in_page(photos).startswith("2 photo(s) translated in")
            page.wait_for_function("document.querySelectorAll('#gallery img').length >= 4")
            page.screenshot(path=os.environ.get("LIT_GAN_APP_SCREENSHOT", str(tmp_path / "app.png")), full_page=True)

            # each result equals predict's, downloaded as a browser download
            for i, photo in enumerate(photos):
                with page.expect_download() as download:
                    page.locator("#downloads a").nth(i).click()
                saved = tmp_path / "downloads" / download.value.suggested_filename
                download.value.save_as(saved)
                assert saved.name == f"{photo.stem}-AtoB.png"
                assert np.array_equal(pixels(saved), expected[photo.stem]), photo.name
            with page.expect_download() as download:
                page.locator("#zip a").first.click()
            download.value.save_as(tmp_path / "all.zip")
            with zipfile.ZipFile(tmp_path / "all.zip") as archive:
                assert sorted(archive.namelist()) == sorted(f"{p.stem}-AtoB.png" for p in photos)
                for photo in photos:
                    assert np.array_equal(pixels(archive.read(f"{photo.stem}-AtoB.png")), expected[photo.stem])

            # strength: the output moves away from the photo monotonically
            photo = pixels(photos[0])
            distances = []
            for strength in ("0", "0.5", "1"):
                page.locator("#strength input[type=number]").fill(strength)
                page.locator("#strength input[type=number]").press("Enter")
                stylize_in_page(photos[:1])
                distances.append(np.abs(pixels(result(0)) - photo).mean())
            assert distances[0] == 0 and distances[0] < distances[1] < distances[2], distances

            # a text file renamed .jpg: an error naming it, and the app keeps working
            page.locator("#photos button[aria-label=Clear]").click()
            page.locator("#photos input[type=file]").set_input_files([str(text)])
            page.locator("#stylize").click()
            toast = page.locator("[data-testid=toast-text]").filter(has_text="holiday.jpg")
            toast.wait_for(timeout=30_000)
            assert "holiday.jpg: not an image PIL can decode" in toast.inner_text()
            assert stylize_in_page(photos[:1]).startswith("1 photo(s) translated")

            # a crafted checkpoint: refused in one line, nothing run, and the app keeps working
            choose("run", "evil.ckpt")  # a file outside a run folder is listed by its name
            toast = page.locator("[data-testid=toast-text]").filter(has_text="refused")
            toast.wait_for(timeout=30_000)
            assert "evil.ckpt refused: it holds objects that would run code when loaded" in toast.inner_text()
            assert not (tmp_path / "marker").exists()
            choose("run", run_label)
            wait_status("loaded")
            assert stylize_in_page(photos[:1]).startswith("1 photo(s) translated")

            # two runs side by side on one photo, with their metrics
            page.get_by_role("tab", name="Compare runs").click()
            page.locator("#compare-photo input[type=file]").set_input_files([str(photos[0])])
            page.locator("#compare").click()
            page.wait_for_function("document.querySelectorAll('#compare-gallery img').length >= 3", timeout=60_000)
            table = page.locator("#compare-table").inner_text()
            assert run.name in table and other.name in table
            browser.close()
    finally:
        process.terminate()
        process.wait(30)
    foreign = [u for u in requests if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname not in
               ("127.0.0.1", "localhost")]  # fmt: skip
    assert requests and not foreign, foreign


def test_photos_come_from_uploads_and_a_folder_on_this_machine_and_bad_ones_are_named(tmp_path):
    from lit_gan.app import gather_photos

    uploads = write_images(tmp_path / "uploads", 2, size=40)
    folder = tmp_path / "folder"
    write_images(folder / "sub", 1, size=48, seed=3)
    (folder / "holiday.jpg").write_text("not a photo")
    photos, problems = gather_photos([str(p) for p in uploads], str(folder), max_pixels=10_000)
    assert [name for name, _ in photos] == ["img_000.png", "img_001.png", "sub/img_000.png"]
    assert [image.size for _, image in photos] == [(40, 40), (40, 40), (48, 48)]
    assert problems == ["holiday.jpg: not an image PIL can decode (cannot identify image file); give a photo (JPEG, "
                        "PNG, WebP, TIFF, ...)"]  # fmt: skip
    photos, problems = gather_photos([str(uploads[0])], str(tmp_path / "nowhere"), max_pixels=1000)
    assert photos == [] and len(problems) == 2
    assert "nowhere does not exist" in problems[0] and problems[1].startswith("img_000.png: 40x40 px is over the limit")


def test_the_style_controls_make_the_style_request(tmp_path):
    import gradio as gr

    from lit_gan.app import style_request

    bank = tmp_path / "styles"
    assert style_request(False, "stored style", "a", None, 0.5, None, 0, bank) is None  # not a multi-style model
    assert style_request(True, "latent code", None, None, 0.5, None, 7, bank).seed == 7
    assert style_request(True, "stored style", "a", "b", 0.5, None, 0, bank).style == "a"
    assert style_request(True, "blend of two styles", "a", "b", 0.25, None, 0, bank).style == "a:0.75,b:0.25"
    assert style_request(True, "blend of two styles", "a", "b", 1.0, None, 0, bank).style == "b"
    assert style_request(True, "reference image", None, None, 0.5, "ref.png", 0, bank).reference == "ref.png"
    with pytest.raises(gr.Error, match="no stored style chosen"):
        style_request(True, "stored style", None, None, 0.5, None, 0, bank)
    with pytest.raises(gr.Error, match="drop in a reference image"):
        style_request(True, "reference image", None, None, 0.5, None, 0, bank)
    from lit_gan.app import STYLE_MODES, style_controls

    shown = {mode: [update["visible"] for update in style_controls(mode)] for mode in STYLE_MODES}
    assert shown == {  # seed, stored style, second style, blend, reference image
        "latent code": [True, False, False, False, False],
        "stored style": [False, True, False, False, False],
        "blend of two styles": [False, True, True, True, False],
        "reference image": [False, False, False, False, True],
    }


@pytest.mark.slow
def test_the_app_asks_for_its_password_and_refuses_uploads_over_its_limit(trained_checkpoint, tmp_path):
    import http.cookiejar
    import urllib.error
    import urllib.parse
    import urllib.request

    run = trained_checkpoint("cyclegan").parent.parent
    process, url = start_app(tmp_path, str(run), "--auth", "me:secret", "--max_file_size", "1")

    def call(opener, path: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        try:
            with opener.open(urllib.request.Request(url + path, data=data, headers=headers or {})) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    try:
        assert urlparse(url).hostname == "127.0.0.1"
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        assert call(browser, "config")[0] == 401  # the app's state is closed before logging in
        form = {"username": "me", "password": "wrong"}
        assert call(browser, "login", urllib.parse.urlencode(form).encode())[0] == 400
        form["password"] = "secret"
        assert call(browser, "login", urllib.parse.urlencode(form).encode())[0] == 200
        assert call(browser, "config")[0] == 200
        boundary = "lit-gan-boundary"
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n'
                "Content-Type: image/png\r\n\r\n").encode()  # fmt: skip
        body = head + b"\0" * (2 * 1024 * 1024) + f"\r\n--{boundary}--\r\n".encode()
        status, text = call(browser, "gradio_api/upload", body,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
        assert status == 413 and b"maximum allowed size of 1048576 bytes" in text
    finally:
        process.terminate()
        process.wait(30)

"""The app's latency and behaviour under load (`python -m lit_gan app`), measured from outside as a browser sees it.

    python benchmarks/app_serving.py [--run RUN_DIR ...] [--photo PHOTO] [--out benchmarks/results/app_serving.json]

For each run (default: the full-size CycleGAN of configs/cyclegan.yaml, ResNet-9 at 64 filters, its weights from
one training step on the built-in data: inference costs the same as a trained model's), in a fresh app process:
- app start: from the command to the port answering, and to the page loading;
- model load: `Models.get` in this process (median of 3 fresh loads);
- first and next results at 256 and 512 px (long side): one photo per request through Gradio's own client
  (`gradio_client`, the app's HTTP API), from the click to the result file; "first" includes loading the model.
Then the load test on the first run: 4 clients x 10 requests of a 512 px photo at once, against the app with its
default queue (8 waiting) and again with `--queue 1`: every request must be answered or refused with the app's "busy"
message; the app's peak memory (VmHWM) is read from /proc; one more request must then succeed.
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lit_gan.runs import atomic_write  # noqa: E402
from lit_gan.serving import Models, find_choices  # noqa: E402


def full_size_cyclegan(folder: Path) -> Path:
    """A run of configs/cyclegan.yaml after one step on the built-in data (the full-size generator)."""
    subprocess.run(
        [sys.executable, "-m", "lit_gan", "fit", f"--config={REPO / 'configs/cyclegan.yaml'}", "--data.name=synthetic",
         "--data.synthetic.train_size=2", "--data.synthetic.test_size=2", "--trainer.max_steps=1",
         "--metrics.enabled=false", f"--trainer.logger.save_dir={folder}", "--trainer.logger.name=cyclegan-full",
         "--trainer.enable_progress_bar=false"],
        check=True, cwd=folder, env={**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(folder)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    (run,) = folder.glob("lit_gan/*/checkpoints/last.ckpt")
    return run.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(run: Path, folder: Path, *extra: str) -> tuple[subprocess.Popen, str, dict]:
    """The app on `run` in a fresh process: (process, url, {"port_s", "page_s"})."""
    import urllib.request

    port = free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "lit_gan", "app", str(run), "--port", str(port), *extra],
                               env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the app exited with code {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    port_s = time.perf_counter() - start
    with urllib.request.urlopen(url) as response:
        response.read()
    return process, url, {"port_s": port_s, "page_s": time.perf_counter() - start}


def request(client, choice, photo: Path, size: str) -> tuple[float, str]:
    """One stylize request of `photo` at `size`: (seconds, "ok" or the app's error message)."""
    from gradio_client import handle_file

    start = time.perf_counter()
    try:
        client.predict(choice.label, next(iter(choice.checkpoints)), None, "EMA", [handle_file(str(photo))], "", 1.0,
                       size, "latent code", None, None, 0.5, None, 0, api_name="/stylize")  # fmt: skip
        outcome = "ok"
    except Exception as err:  # the app's gr.Error reaches the client as an AppError with its message
        outcome = str(err).splitlines()[0] or type(err).__name__
    return time.perf_counter() - start, outcome


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def latency(run: Path, photo: Path, folder: Path) -> dict:
    from gradio_client import Client

    (choice,) = find_choices([run])
    loads = []
    for _ in range(3):
        models = Models("cpu")
        start = time.perf_counter()
        models.get(next(iter(choice.checkpoints.values())))
        loads.append(time.perf_counter() - start)
    process, url, started = start_app(run, folder)
    try:
        client = Client(url, verbose=False)
        result = {"run": choice.label, "app_start_s": started, "model_load_s": statistics.median(loads)}
        for size in ("256", "512"):
            first = request(client, choice, photo, size)
            assert first[1] == "ok", first
            nexts = [request(client, choice, photo, size) for _ in range(3)]
            assert all(outcome == "ok" for _, outcome in nexts), nexts
            result[size] = {"first_s": first[0], "next_s": statistics.median(t for t, _ in nexts),
                            "next_range_s": [min(t for t, _ in nexts), max(t for t, _ in nexts)]}  # fmt: skip
        result["peak_memory_mb"] = peak_memory_mb(process.pid)
        return result
    finally:
        process.terminate()
        process.wait(30)


def load_test(run: Path, photo: Path, folder: Path, clients: int = 4, requests: int = 10, *extra: str) -> dict:
    from gradio_client import Client

    (choice,) = find_choices([run])
    process, url, _ = start_app(run, folder, *extra)
    try:
        warm = Client(url, verbose=False)
        assert request(warm, choice, photo, "512")[1] == "ok"  # the model loaded, as after a first visitor
        outcomes: list[tuple[float, str]] = []
        lock = threading.Lock()

        def client_loop() -> None:
            client = Client(url, verbose=False)
            for _ in range(requests):
                result = request(client, choice, photo, "512")
                with lock:
                    outcomes.append(result)

        start = time.perf_counter()
        threads = [threading.Thread(target=client_loop) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        after = request(warm, choice, photo, "512")
        ok = [t for t, o in outcomes if o == "ok"]
        busy = [o for _, o in outcomes if o.startswith("busy:")]
        other = [o for _, o in outcomes if o != "ok" and not o.startswith("busy:")]
        return {
            "app_options": list(extra),
            "requests": clients * requests,
            "answered": len(outcomes),
            "ok": len(ok),
            "busy": len(busy),
            "busy_message": busy[0] if busy else None,
            "other_errors": other,
            "ok_latency_median_s": statistics.median(ok) if ok else None,
            "ok_latency_max_s": max(ok) if ok else None,
            "wall_s": wall,
            "peak_memory_mb": peak_memory_mb(process.pid),
            "answers_afterwards": after[1] == "ok",
        }
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, nargs="*", default=None, help="run folders (default: full-size CycleGAN)")
    parser.add_argument("--photo", type=Path, default=None, help="a photo (default: one of the built-in data)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "app_serving.json")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lit_gan_app_bench_"))
    runs = args.run or [full_size_cyclegan(folder)]
    photo = args.photo
    if photo is None:  # a built-in scene at 768 px; the app resizes it to each long side
        from lit_gan.data.synthetic import render_scene

        photo = folder / "scene.png"
        render_scene(0, 768).save(photo)
    results = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "torch_threads": __import__("torch").get_num_threads(),
        },  # fmt: skip
        "photo": {"path": str(photo)},
        "latency": [latency(run, photo, folder) for run in runs],
        "load": [load_test(runs[0], photo, folder), load_test(runs[0], photo, folder, 4, 10, "--queue", "1")],
    }
    atomic_write(args.out, lambda tmp: tmp.write_text(json.dumps(results, indent=2) + "\n"))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

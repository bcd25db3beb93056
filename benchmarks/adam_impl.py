"""Adam's implementations on the parameters of CycleGAN's optimizers: the per-tensor loop, `foreach` (one kernel per
operation over all tensors) and `fused` (one kernel for the whole update), timed in interleaved rounds.

    python benchmarks/adam_impl.py [--device cpu|cuda] [--repeats 5] [--steps 20] [--out FILE]

The two optimizers of CycleGAN (two ResNet-9 generators, ngf 64; two 70x70 PatchGANs) hold 11.4M + 5.5M parameters
... per network pair; gradients are random and fixed, so only the update itself is timed.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator

IMPLS = {"for-loop": {"foreach": False, "fused": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def parameters(device: str) -> list[torch.Tensor]:
    nets = [ResnetGenerator(), ResnetGenerator(), PatchGANDiscriminator(), PatchGANDiscriminator()]
    params = [p.detach().to(device).requires_grad_() for net in nets for p in net.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    return params


def time_steps(opt: torch.optim.Optimizer, steps: int, device: str) -> float:
    """Seconds per `opt.step()`."""
    opt.step()  # allocates the state
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    params = parameters(args.device)
    n = sum(p.numel() for p in params)
    times: dict[str, list[float]] = {name: [] for name in IMPLS}
    for _ in range(args.repeats):
        for name, kwargs in IMPLS.items():  # interleaved: drift on a shared machine hits every implementation
            opt = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), **kwargs)
            times[name].append(time_steps(opt, args.steps, args.device))
    report = {
        "command": " ".join(["python", *sys.argv]),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "parameters": n,
        "repeats": args.repeats,
        "steps": args.steps,
        "ms": {name: [t * 1e3 for t in values] for name, values in times.items()},
    }
    print(markdown_table(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


def markdown_table(report: dict) -> str:
    """The implementations' ms per step, median [min-max] over the rounds, and the speed-up over the for-loop."""
    base = statistics.median(report["ms"]["for-loop"])
    rows = [
        f"Adam step over {report['parameters'] / 1e6:.1f}M parameters on {report['device']} ({report['threads']} "
        f"threads), {report['repeats']} rounds of {report['steps']} steps:",
        "",
        "| implementation | ms per step, median [min-max] | speed vs for-loop |",
        "|---|---|---|",
    ]
    for name, values in report["ms"].items():
        med = statistics.median(values)
        rows.append(f"| {name} | {med:.1f} [{min(values):.1f}-{max(values):.1f}] | {base / med:.2f}x |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()

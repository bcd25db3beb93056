"""Adam's implementations on the parameters of CycleGAN's optimizers: the per-tensor loop, `foreach` (one kernel per
operation over all tensors) and `fused` (one kernel for the whole update), timed in interleaved rounds.

    python benchmarks/adam_impl.py [--device cpu|cuda] [--repeats 5] [--steps 20]

The two optimizers of CycleGAN (two ResNet-9 generators, ngf 64; two 70x70 PatchGANs) hold 11.4M + 5.5M parameters
... per network pair; gradients are random and fixed, so only the update itself is timed.
"""

import argparse
import statistics
import time

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
    args = parser.parse_args()
    params = parameters(args.device)
    n = sum(p.numel() for p in params)
    times: dict[str, list[float]] = {name: [] for name in IMPLS}
    for _ in range(args.repeats):
        for name, kwargs in IMPLS.items():  # interleaved: drift on a shared machine hits every implementation
            opt = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), **kwargs)
            times[name].append(time_steps(opt, args.steps, args.device))
    base = statistics.median(times["for-loop"])
    print(f"Adam step over {n / 1e6:.1f}M parameters on {args.device} ({torch.get_num_threads()} threads), ms:")
    print("| implementation | median [min-max] ms | speed vs for-loop |")
    print("|---|---|---|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med * 1e3:.1f} [{min(values) * 1e3:.1f}-{max(values) * 1e3:.1f}] | {base / med:.2f}x |")


if __name__ == "__main__":
    main()

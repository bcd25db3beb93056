import math
import typing

import pytest
import torch

from lit_gan.models.schedules import (
    LR_POLICIES,
    LRPolicy,
    LRPolicyName,
    build_scheduler,
    linear_decay,
    linear_decay_factor,
)


def reference_lambda_rule(epoch, n_epochs, n_epochs_decay, epoch_count=1):
    # As written in the reference CycleGAN code (networks.get_scheduler, lr_policy == 'linear').
    return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)


@pytest.mark.parametrize(("n_epochs", "n_epochs_decay"), [(100, 100), (3, 5), (0, 4), (2, 0)])
def test_linear_policy_matches_reference_formula(n_epochs, n_epochs_decay):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = linear_decay(opt, n_epochs, n_epochs_decay)
    for epoch in range(n_epochs + n_epochs_decay + 3):
        if epoch >= n_epochs + n_epochs_decay + 1:  # past the schedule the reference goes negative; we stop at 0
            assert opt.param_groups[0]["lr"] == 0.0
            continue
        expected = 2e-4 * reference_lambda_rule(epoch, n_epochs, n_epochs_decay)
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-18)
        assert linear_decay_factor(epoch, n_epochs, n_epochs_decay) == reference_lambda_rule(
            epoch, n_epochs, n_epochs_decay
        )
        opt.step()
        sched.step()


def lrs(policy: str, epochs: int, **settings) -> list[float]:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, LRPolicy(policy, **settings))
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_policy_names_match_the_registry():
    assert set(typing.get_args(LRPolicyName)) == set(LR_POLICIES)


def test_step_cosine_and_constant_policies():
    assert lrs("step", 7, step_epochs=3) == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])
    cosine = lrs("cosine", 5, n_epochs=2, n_epochs_decay=2)
    assert cosine == pytest.approx([0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(5)])
    assert cosine[-1] == pytest.approx(0, abs=1e-12)
    assert lrs("constant", 4) == [1.0] * 4


def test_plateau_policy_uses_the_reference_settings():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, LRPolicy("plateau"))
    for _ in range(7):  # patience 5: the 7th epoch without a 1% improvement cuts the rate by 0.2
        sched.step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)


def test_unknown_policy_is_named():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="unknown lr_policy.policy 'warmup'; valid: constant, cosine, linear"):
        build_scheduler(opt, LRPolicy("warmup"))

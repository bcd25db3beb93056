import pytest
import torch

from lit_gan.models.schedules import linear_decay, linear_decay_factor


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

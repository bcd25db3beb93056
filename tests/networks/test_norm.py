from typing import get_args

import pytest
import torch
import torch.distributed as dist
from torch import nn

from lit_gan.networks.norm import NORM_LAYERS, NormName, conv_bias, norm_layer


def test_literal_lists_every_norm():
    assert set(get_args(NormName)) == set(NORM_LAYERS)


def test_conv_bias_only_without_a_learned_shift():
    assert {name: conv_bias(name) for name in NORM_LAYERS} == {
        "instance": True,
        "batch": False,
        "syncbatch": False,
        "none": True,
    }


def test_unknown_norm_names_the_valid_ones():
    with pytest.raises(ValueError, match="'group'.*batch, instance, none, syncbatch"):
        norm_layer("group", 4)


def test_sync_batch_norm_is_batch_norm_outside_a_process_group():
    """One process, no process group (CPU training, tests): SyncBatchNorm falls back to plain batch norm."""
    assert not dist.is_initialized()
    torch.manual_seed(0)
    sync, plain = norm_layer("syncbatch", 4), norm_layer("batch", 4)
    x = torch.randn(3, 4, 5, 5, requires_grad=True)
    for train in (True, False):
        sync.train(train)
        plain.train(train)
        out_sync, out_plain = sync(x), plain(x)
        torch.testing.assert_close(out_sync, out_plain)
        (grad_sync,) = torch.autograd.grad(out_sync.square().sum(), x)
        (grad_plain,) = torch.autograd.grad(out_plain.square().sum(), x)
        torch.testing.assert_close(grad_sync, grad_plain)
    torch.testing.assert_close(sync.running_mean, plain.running_mean)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_sync_batch_norm_cannot_train_on_cpu_inside_a_process_group(tmp_path):
    """The limitation documented in norm.py: in a process group, even of one process, torch only syncs on GPU/XPU."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        layer = nn.SyncBatchNorm(4)
        with pytest.raises(ValueError, match="SyncBatchNorm expected input tensor to be on GPU"):
            layer(torch.randn(2, 4, 3, 3))
        layer.eval()
        assert layer(torch.randn(2, 4, 3, 3)).shape == (2, 4, 3, 3)  # eval never syncs
    finally:
        dist.destroy_process_group()

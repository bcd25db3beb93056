"""Networks: plain `torch.nn.Module`s with no Lightning dependency."""

from lit_gan.networks.init import init_weights
from lit_gan.networks.patchgan import PatchGANDiscriminator
from lit_gan.networks.resnet import ResnetGenerator

__all__ = ["PatchGANDiscriminator", "ResnetGenerator", "init_weights"]

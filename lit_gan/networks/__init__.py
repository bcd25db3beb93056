"""Networks: plain `torch.nn.Module`s with no Lightning dependency."""

from lit_gan.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lit_gan.networks.init import init_weights
from lit_gan.networks.patchgan import PatchGANDiscriminator
from lit_gan.networks.pixel import PixelDiscriminator
from lit_gan.networks.progan import ProGANDiscriminator, ProGANGenerator
from lit_gan.networks.resnet import ResnetGenerator
from lit_gan.networks.spectral import apply_spectral_norm
from lit_gan.networks.unet import UnetGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "PatchGANDiscriminator",
    "PixelDiscriminator",
    "ProGANDiscriminator",
    "ProGANGenerator",
    "ResnetGenerator",
    "UnetGenerator",
    "apply_spectral_norm",
    "init_weights",
]

"""The optimizer the GAN references use, as the default of `model.optimizer_G` and `model.optimizer_D`."""

import torch


class GANAdam(torch.optim.Adam):
    """`torch.optim.Adam` with the defaults of the CycleGAN, pix2pix and DCGAN references: lr 2e-4, betas (0.5, 0.999).

    The model sets the learning rate (`model.lr`, one for the generators and the discriminators); the other options
    are Adam's, e.g. `--model.optimizer_D.betas [0.0, 0.99]`.
    """

    def __init__(self, params, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), **kwargs) -> None:
        super().__init__(params, lr=lr, betas=betas, **kwargs)

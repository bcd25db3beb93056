"""PatchNCE (Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020): each patch of a
translated image should be closer, in the generator's encoder features, to the patch at the same place of its input
than to the other patches of that input (InfoNCE with temperature `temperature`)."""

import torch
import torch.nn.functional as F
from torch import Tensor


def patch_nce_loss(query: Tensor, key: Tensor, batch_size: int, temperature: float = 0.07) -> Tensor:
    """Per-patch InfoNCE losses, (N,), as the reference's `PatchNCELoss`.

    Args:
        query: (N, C) unit-norm embeddings of the output's patches, N = batch_size * patches, image-major.
        key: (N, C) unit-norm embeddings of the input's patches at the same locations (no gradient flows into them).
        batch_size: the images the patches come from. The negatives of a patch are the other patches of its own
            image; pass 1 to draw them from every image of the minibatch (the reference's single-image setting,
            nce_includes_all_negatives_from_minibatch).
        temperature: divides the cosine similarities (the reference's nce_T).
    """
    n, dim = query.shape
    key = key.detach()
    positive = (query * key).sum(1, keepdim=True)  # (N, 1)
    q, k = query.view(batch_size, -1, dim), key.view(batch_size, -1, dim)
    negatives = torch.bmm(q, k.transpose(2, 1))  # (b, P, P): patch i against every patch j of the same group
    patches = q.shape[1]
    diagonal = torch.eye(patches, device=query.device, dtype=torch.bool)[None]
    negatives = negatives.masked_fill(diagonal, -10.0).view(-1, patches)  # the positive pair is not a negative
    logits = torch.cat([positive, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=query.device), reduction="none")

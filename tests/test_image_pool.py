import torch

from lit_gan.image_pool import ImagePool


def batch(value: float, n: int = 1) -> torch.Tensor:
    return torch.full((n, 1, 2, 2), value)


def test_size_zero_passes_through():
    pool = ImagePool(0)
    x = torch.randn(3, 1, 2, 2)
    assert torch.equal(pool.query(x), x) and len(pool) == 0


def test_fills_up_then_returns_new_or_swapped_images():
    pool = ImagePool(4, seed=0)
    for v in range(4):  # filling: each image is stored and returned unchanged
        assert torch.equal(pool.query(batch(v)), batch(v))
    assert sorted(img[0, 0, 0].item() for img in pool.images) == [0, 1, 2, 3]
    swapped = 0
    for v in range(4, 404):
        out = pool.query(batch(v)).flatten()[0].item()
        contents = [img[0, 0, 0].item() for img in pool.images]
        assert len(contents) == 4
        if out == v:  # returned the new image; pool unchanged
            assert v not in contents
        else:  # returned an older stored image, the new one took its place
            swapped += 1
            assert out < v and v in contents and out not in contents
    assert 150 < swapped < 250  # probability 0.5


def test_batches_are_handled_image_by_image():
    pool = ImagePool(2, seed=0)
    out = pool.query(torch.arange(3.0).view(3, 1, 1, 1))
    assert out.shape == (3, 1, 1, 1)
    assert out[0].item() == 0 and out[1].item() == 1  # the first two fill the pool


def test_seeded_and_restorable():
    a, b = ImagePool(3, seed=7), ImagePool(3, seed=7)
    for v in range(10):
        assert torch.equal(a.query(batch(v)), b.query(batch(v)))
    state = a.state_dict()
    c = ImagePool(3, seed=123)
    c.load_state_dict(state)
    for v in range(10, 30):
        assert torch.equal(a.query(batch(v)), c.query(batch(v)))

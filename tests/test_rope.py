"""Rotary embeddings against the float64 reference, both layouts, on every ISA path and at 1 and 2 threads.

Head sizes leave scalar tails after 4 (avx2) and 8 (avx-512) interleaved pairs and after 8 and 16 split
halves; (8, 64, 128) is large enough to be split over threads.
"""

import numpy as np
import pytest
from helpers import assert_close

from fastformer import _core, ops
from fastformer import _reference as ref

HEAD_SIZES = [2, 6, 8, 14, 16, 34, 64, 80, 96, 128, 160, 256]


def data(shape, seed=0):
    return np.random.default_rng([seed, *shape]).standard_normal(shape).astype(np.float32)


def exact_tables(positions, d, theta=10000.0):
    """cos, sin (T, D/2) of the reference's float64 angles, rounded once to float32."""
    inv_freq = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("d", HEAD_SIZES)
def test_rope(isa, threads, d, interleaved):
    x = data((3, 11, d))
    pos = np.arange(11)
    got = ops.rope(x, pos, interleaved=interleaved)
    assert got.shape == x.shape
    assert_close(got, ref.rope(x, pos, interleaved=interleaved), "rope")


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("shape", [(8, 64, 128), (32, 1, 128), (1, 300, 64), (4, 33, 80)], ids=str)
def test_rope_shapes(isa, threads, shape, interleaved):
    # tables from the reference's float64 angles: ops.rope's float32 frequencies drift from them with position
    x = data(shape)
    pos = np.arange(5, 5 + shape[1])
    got = _core.rope_apply(x, *exact_tables(pos, shape[2]), interleaved=interleaved)
    assert_close(got, ref.rope(x, pos, interleaved=interleaved), "rope")


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("d", [8, 14, 64, 128])
def test_rope_large_positions(isa, threads, d, interleaved):
    # the kernel with the reference's own angles, at positions a long context reaches
    pos = np.array([0, 1, 4095, 32767, 65536, 100_000, 131_071, 1_000_000])
    x = data((4, len(pos), d))
    cos, sin = exact_tables(pos, d)
    got = _core.rope_apply(x, cos, sin, interleaved=interleaved)
    assert_close(got, ref.rope(x, pos, interleaved=interleaved), "rope")


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_large_positions_end_to_end(isa, interleaved):
    # theta = 2^d makes every inverse frequency a power of two, so ops.rope's float32 frequencies (as Hugging
    # Face computes them) equal the reference's float64 ones and long positions can be compared directly
    d = 16
    inv = ops.rope_inv_freq(d, theta=2.0**d)
    assert (inv.astype(np.float64) == 2.0 ** -np.arange(0, d, 2)).all()
    pos = np.array([3, 100_000, 123_457, 1 << 20, 5_000_000])
    x = data((2, len(pos), d))
    got = ops.rope(x, pos, theta=2.0**d, interleaved=interleaved)
    assert_close(got, ref.rope(x, pos, theta=2.0**d, interleaved=interleaved), "rope")


def test_rope_table_angles_in_double():
    # angles pos * inv_freq are formed in float64 from the float32 frequencies, then rounded once
    pos = np.array([0, 7, 100_000, 2_000_000], dtype=np.int64)
    inv = ops.rope_inv_freq(64)
    cos, sin = _core.rope_table(pos, inv)
    ang = pos[:, None].astype(np.float64) * inv.astype(np.float64)[None, :]
    np.testing.assert_allclose(cos, np.cos(ang), rtol=0, atol=1e-7)
    np.testing.assert_allclose(sin, np.sin(ang), rtol=0, atol=1e-7)


def test_rope_position_zero_is_identity(isa):
    x = data((2, 1, 128))
    for interleaved in (False, True):
        np.testing.assert_array_equal(ops.rope(x, [0], interleaved=interleaved), x)


def test_rope_layouts_are_permutations(isa):
    # rotating interleaved pairs equals rotating split halves after moving (2i, 2i+1) to (i, i + D/2)
    d = 96
    x = data((3, 9, d))
    pos = np.arange(9) * 37
    perm = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])
    a = ops.rope(x, pos, interleaved=True)[..., perm]
    b = ops.rope(np.ascontiguousarray(x[..., perm]), pos, interleaved=False)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_rope_does_not_modify_input(isa, threads):
    x = data((8, 64, 128))
    before = x.copy()
    ops.rope(x, np.arange(64))
    np.testing.assert_array_equal(x, before)


def test_rope_non_contiguous(isa, threads):
    x = data((6, 40, 2 * 64))
    for v in (x[:, :, ::2], x[::2], np.swapaxes(data((40, 6, 64)), 0, 1)):
        assert not v.flags.c_contiguous
        pos = np.arange(v.shape[1])
        for il in (False, True):
            assert_close(ops.rope(v, pos, interleaved=il), ref.rope(v, pos, interleaved=il), "rope")


def test_rope_bad_arguments():
    x = data((2, 3, 8))
    with pytest.raises(ValueError, match=r"\(2, 3, 7\)"):
        ops.rope(data((2, 3, 7)), np.arange(3))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3, 8\).*\(4,\)"):
        ops.rope(x, np.arange(4))
    with pytest.raises(ValueError, match=r"\(3, 8\)"):
        ops.rope(data((3, 8)), np.arange(3))
    with pytest.raises(TypeError, match="float64"):
        ops.rope(x, np.arange(3.0))
    with pytest.raises(TypeError, match="float64"):
        ops.rope(x.astype(np.float64), np.arange(3))
    with pytest.raises(ValueError, match="theta"):
        ops.rope(x, np.arange(3), theta=0.0)
    cos, sin = exact_tables(np.arange(3), 8)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 3\)"):
        _core.rope_apply(x, cos[:, :3], sin)

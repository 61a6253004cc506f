"""The quant-type table (csrc/ff_qtype.c): ggml's block sizes, the dispatch slots behind its flags, and the
Python lists derived from it."""

import numpy as np
import pytest

from fastformer import _core, gguf, quant

ROWS = {row[0]: row for row in _core.QTYPE_TABLE}
# gguf-py still lists q8_1 as 40 bytes (float d, s); ggml's block_q8_1 holds two fp16 and is 36
GGUF_PY_STALE = {9: 40}


@pytest.mark.peer("gguf")
def test_table_matches_the_gguf_package():
    gguf_constants = pytest.importorskip("gguf.constants")
    want = {int(t): (t.name.lower(), b, n) for t, (b, n) in gguf_constants.GGML_QUANT_SIZES.items()}
    got = {tid: (name, block, nbytes) for tid, name, block, nbytes, *_ in _core.QTYPE_TABLE}
    assert set(got) == set(want), f"ids only here {set(got) - set(want)}, only in gguf {set(want) - set(got)}"
    for tid, (name, block, nbytes) in want.items():
        assert got[tid][:2] == (name, block), tid
        assert got[tid][2] == nbytes or GGUF_PY_STALE.get(tid) == nbytes, (tid, got[tid], nbytes)


@pytest.mark.parametrize("row", _core.QTYPE_TABLE, ids=[row[1] for row in _core.QTYPE_TABLE])
def test_rows_are_consistent(row):
    tid, name, block, nbytes, flags, lo, hi = row
    assert _core.qtype_block(tid) == (block, nbytes)
    assert _core.qtype_row_bytes(tid, 3 * block) == 3 * nbytes
    assert 0 <= lo <= hi <= nbytes and (hi - lo) % 2 == 0
    if flags & (_core.QF_LINEAR | _core.QF_R16 | _core.QF_QUANTIZE):
        assert flags & _core.QF_DEQUANT, "every type fastformer writes or multiplies it can also read"
    if flags & _core.QF_R16:
        assert flags & _core.QF_LINEAR
    if flags & _core.QF_LINEAR:
        assert block % 32 == 0 and hi > lo, "the int8 kernels take 32-blocks with fp16 scales"


@pytest.mark.parametrize("isa", _core.isa_names())
def test_every_flag_has_its_kernels_in_every_table(isa):
    # one table per ISA and int8 dot: every slot a flag promises is filled, and no slot without its flag
    for tid, name, _, _, flags, _, _ in _core.QTYPE_TABLE:
        assert _core.qtype_kernels(isa, tid) == flags, (isa, name)
    assert _core.qtype_kernels(isa, 4) == 0 and _core.qtype_kernels(isa, 10_000) == 0


def test_unknown_ids():
    assert 4 not in ROWS and 31 not in ROWS  # retired by ggml
    assert _core.qtype_block(4) == (0, 0)
    with pytest.raises(ValueError, match="unknown ggml type id 4"):
        _core.qtype_row_bytes(4, 32)
    with pytest.raises(ValueError, match="no dequantizer|only .* have dequantizers"):
        _core.dequantize_rows(np.zeros((1, 36), np.uint8), 9, 32)  # q8_1: known, not implemented
    with pytest.raises(ValueError, match="only .* have quantizers"):
        _core.quantize_rows(np.zeros((1, 256), np.float32), 12)


def test_python_lists_derive_from_the_table():
    def named(flag):
        return {row[1] for row in _core.QTYPE_TABLE if row[4] & flag}

    assert set(quant.QTYPES) == named(_core.QF_DEQUANT) == set(_core.QTYPE_IDS)
    assert set(quant._LINEAR) == named(_core.QF_LINEAR)
    assert set(quant._QUANTIZABLE) == named(_core.QF_QUANTIZE)
    # most bits per weight first: q8_0 is the default
    assert quant.QUANTIZABLE_AT_LOAD[0] == "q8_0"
    assert set(quant.QUANTIZABLE_AT_LOAD) == named(_core.QF_QUANTIZE) & named(_core.QF_LINEAR)
    assert {"q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"} <= set(quant.QUANTIZABLE_AT_LOAD)
    bits = [quant.QTYPES[t][2] / quant.QTYPES[t][1] for t in quant.QUANTIZABLE_AT_LOAD]
    assert bits == sorted(bits, reverse=True)
    assert {t.lower() for t in gguf.QUANT_TYPES} == named(_core.QF_LINEAR)
    assert set(gguf._SCALE_BYTES) == named(_core.QF_LINEAR)
    assert gguf.GGML_TYPES == {row[0]: (row[1].upper(), row[2], row[3]) for row in _core.QTYPE_TABLE}

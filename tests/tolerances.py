"""The one tolerance table (tests/helpers.py's assert_close reads it): float32 kernels against float64 numpy
references, and fastformer's logits against transformers'.

| op          | rtol  | atol  | why                                                           |
|-------------|-------|-------|---------------------------------------------------------------|
| matmul      | 1e-5  | 1e-4 * sqrt(K) | fp32 accumulation over K terms (values ~ N(0,1))     |
| norms       | 1e-5  | 1e-5  | one fp32 rounding of sum + rsqrt                              |
| softmax     | 1e-5  | 1e-7  | vector exp accurate to ~2 ulp                                 |
| gelu, silu  | 2e-6  | 1e-8  | exp/erfc ~1-3 ulp, times the ulp of u when exp(-u) is large   |
| rope        | 1e-5  | 1e-5  | angles in float64, rounded once to fp32                       |
| attention   | 1e-4  | 1e-5  | fp32 dot products over D plus online-softmax rescaling        |
| logits      | 0     | 1e-4 * max abs logit | two fp32 forward passes, sums in other orders  |
| logits_f16kv| 0     | 1e-3 * max abs logit | the same with keys and values rounded to fp16  |
"""

import math

TOL = {
    "norm": dict(rtol=1e-5, atol=1e-5),
    "softmax": dict(rtol=1e-5, atol=1e-7),
    "act": dict(rtol=2e-6, atol=1e-8),
    "rope": dict(rtol=1e-5, atol=1e-5),
    "attention": dict(rtol=1e-4, atol=1e-5),
}
SCALED = {"logits": 1e-4, "logits_f16kv": 1e-3}  # atol as a fraction of the largest |reference|, rtol 0


def matmul_tol(k):
    return dict(rtol=1e-5, atol=1e-4 * math.sqrt(max(k, 1)))

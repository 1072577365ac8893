"""scaled_dot_product_attention at sizes that cross the fused kernel's tiles (64 queries x 64..512 keys).

float32 and the 16-bit dtypes run the fused flash-attention ops (_flash_attention and its backward), float64 the
composite (so the finite differences check the composite's formulas). The small shapes are in op_db/nn.py.
"""
import loom.nn.functional as F
import torch.nn.functional as TF

from .common import OpInfo, Sample, rand


def sdpa_tile_samples(dtype, rng):
    yield Sample((rand(rng, (1, 2, 70, 8)), rand(rng, (1, 2, 70, 8)), rand(rng, (1, 2, 70, 5))), {"is_causal": True},
                 name="causal, two query blocks")
    yield Sample((rand(rng, (2, 65, 3)), rand(rng, (2, 9, 3)), rand(rng, (2, 9, 4))), {"is_causal": True},
                 name="causal L > S")
    yield Sample((rand(rng, (2, 9, 3)), rand(rng, (2, 131, 3)), rand(rng, (2, 131, 2))), name="L < S, odd sizes")
    yield Sample((rand(rng, (1, 3)), rand(rng, (1, 3)), rand(rng, (1, 1))), name="one query, one key")
    mask = rng.uniform(size=(2, 1, 66, 40)) > 0.4
    mask[..., 0] = True
    yield Sample((rand(rng, (2, 2, 66, 4)), rand(rng, (2, 40, 4)), rand(rng, (2, 40, 3)), mask), keep_dtype=(3,),
                 name="bool mask broadcast over heads")


OPS = [
    OpInfo("scaled_dot_product_attention_tiles", F.scaled_dot_product_attention, TF.scaled_dot_product_attention,
           sdpa_tile_samples, value_scale=10),
]

# The fused ops behind scaled_dot_product_attention: checked through the entries here and in op_db/nn.py, and in
# test_attention.py (both CPU capabilities, non-contiguous views, masks, create_graph, the fallbacks).
COVERED_ELSEWHERE = {"_flash_attention", "_flash_attention_backward"}

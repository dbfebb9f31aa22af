"""Plain-numpy reference for the lightning indexer example: tier, valid blocks and stable top-k, in float64."""
from __future__ import annotations

import numpy as np

# (largest effective length, tokens per candidate block): 32 blocks cover the tier's whole range
TIERS = ((2048, 64), (8192, 256), (65536, 2048), (131072, 4096))
CANDIDATES = 32


def tier_of(eff: int) -> int:
    """Index into TIERS of the smallest tier that holds ``eff`` tokens."""
    for i, (limit, _) in enumerate(TIERS):
        if eff <= limit:
            return i
    raise ValueError(f"effective length {eff} exceeds the largest tier ({TIERS[-1][0]})")


def stable_topk_indices_desc(scores: np.ndarray, k: int) -> np.ndarray:
    """The k largest entries' indices, largest first, ties to the lower index (the reference's golden)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]


def indexer_ref(scores: np.ndarray, eff: np.ndarray, k: int) -> np.ndarray:
    """scores [B, S, 32], eff [B, S] -> top-k block indices [B, S, k]: blocks starting at or past the effective
    length (block size from the tier) are masked to -inf first."""
    b, s, c = scores.shape
    out = np.empty((b, s, k), dtype=np.int64)
    for i in range(b):
        for j in range(s):
            block = TIERS[tier_of(int(eff[i, j]))][1]
            masked = np.where(np.arange(c) * block < eff[i, j], scores[i, j].astype(np.float64), -np.inf)
            out[i, j] = stable_topk_indices_desc(masked, k)
    return out


__all__ = ["TIERS", "CANDIDATES", "tier_of", "stable_topk_indices_desc", "indexer_ref"]

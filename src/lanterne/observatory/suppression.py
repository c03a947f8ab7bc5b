"""Small-cell suppression: which counts may be shown outside the analyst role.

A count below k is hidden (primary suppression): 2 burglaries in a block in one month can point
at a household. Hiding it is not enough when a total is published beside it, because the total
minus the shown cells gives the hidden one back; nor when the same cells can be read at a coarser
H3 resolution, where the parent minus the shown siblings does the same. Secondary suppression
hides more cells until, in every group whose sum is published elsewhere (the whole map, each set
of H3 siblings, a whole series), the hidden cells are

- none, or
- at least two, adding up to at least k.

Two hidden cells of 1 and 1 add up to 2, which tells both are 1: that is why the sum matters as
well as the number (a rule of "never exactly one hidden cell" alone lets that through). Zeros are
shown: a zero says nobody is in the cell, which discloses nothing about anyone.

docs/observatory.md, "Small-cell suppression", explains the choice of k and what this does not
protect against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LEGAL_FLOOR = 5
"""OB-08: published cells hold at least 5 (the config refuses a lower `observatory.min_count`)."""


def suppress(counts: np.ndarray, groups: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Cells to hide (True) for counts that must not be recoverable below `k`.

    `groups` are arrays of cell indices whose sum is published or can be obtained elsewhere; a cell
    may be in several groups. Secondary cells are the smallest shown non-zero cells of a group
    that still needs one, which loses the least information. A group whose non-zero cells are all
    hidden and add up to less than k cannot be helped here: its sum is itself a small count, which
    whoever publishes it must hide (a map's total, a parent H3 cell on the coarser map).

    >>> suppress(np.array([3, 12, 40, 0]), [np.arange(4)], 10).tolist()
    [True, True, False, False]
    """
    counts = np.asarray(counts, dtype=np.int64)
    members = (
        np.concatenate([np.asarray(g, dtype=np.int64) for g in groups]) if groups else np.empty(0, np.int64)
    )
    gid = np.repeat(np.arange(len(groups), dtype=np.int64), [len(g) for g in groups])
    return suppress_grouped(counts, members, gid, k)


def suppress_grouped(counts: np.ndarray, members: np.ndarray, gid: np.ndarray, k: int) -> np.ndarray:
    """`suppress` with groups given as parallel arrays (cell index, group id): the form maps build
    directly with numpy, with no Python loop over thousands of sibling groups."""
    if k < 1:
        raise ValueError("k must be at least 1")
    counts = np.asarray(counts, dtype=np.int64)
    hidden = (counts > 0) & (counts < k)
    if len(members) == 0 or not hidden.any():
        return hidden
    n_groups = int(gid.max()) + 1
    nonzero = counts[members] > 0
    member_counts = counts[members].astype(np.float64)
    # A cell that is the only non-zero one of some group is that group's whole sum: hiding it as a
    # secondary cell protects nothing where the group's sum is published (an H3 parent shown on
    # the coarser map gives it back), so such cells are chosen only when nothing else is left.
    nonzero_per_group = np.bincount(gid, weights=nonzero, minlength=n_groups)
    lonely = np.zeros(len(counts), dtype=bool)
    lonely[members[nonzero & (nonzero_per_group[gid] == 1)]] = True
    while True:
        hidden_here = hidden[members] & nonzero
        n_hidden = np.bincount(gid, weights=hidden_here, minlength=n_groups)
        hidden_sum = np.bincount(gid, weights=hidden_here * member_counts, minlength=n_groups)
        unsafe = (n_hidden == 1) | ((n_hidden > 0) & (hidden_sum < k))
        if not unsafe.any():
            return hidden
        candidate = unsafe[gid] & nonzero & ~hidden[members]
        if not candidate.any():
            # The groups still unsafe have every non-zero cell hidden and a sum below k: their
            # own total is then a small count, which whoever publishes it must hide (maps hide
            # such a total; a parent H3 cell of that sum is itself a hidden small cell).
            return hidden
        cand_cells = members[candidate]
        cand_groups = gid[candidate]
        order = np.lexsort((cand_cells, counts[cand_cells], lonely[cand_cells], cand_groups))
        first = np.unique(cand_groups[order], return_index=True)[1]
        hidden[cand_cells[order][first]] = True


def group_is_safe(counts: np.ndarray, hidden: np.ndarray, group: np.ndarray, k: int) -> bool:
    """True when the group's published sum cannot give back any hidden cell (the rule above)."""
    values = np.asarray(counts)[group]
    mask = np.asarray(hidden)[group] & (values > 0)
    n = int(mask.sum())
    return n == 0 or (n >= 2 and int(values[mask].sum()) >= k)

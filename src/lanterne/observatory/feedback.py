"""What happens when a hotspot ranking decides where patrols go: the runaway feedback loop of
Ensign et al. (2018), replayed as a small simulation.

The loop: a model ranks areas by recorded incidents; patrols go where the model points;
incidents that only a patrol can find ("discovered": drug deals, weapons, public order) are
recorded only where patrols are; the new records feed the next ranking. Areas the model already
favours therefore produce more records whatever their true rate, and the ranking confirms itself.
Incidents that residents report are recorded everywhere and attenuate the loop without removing
it. The mitigations Ensign et al. propose are to learn from reported incidents only, or to weight
each discovered incident by the inverse of the probability that a patrol was there to see it
(which needs every area to keep a non-zero chance of a patrol).

The simulation exists so that a ranking is never shown without its likely consequence (OB-05):
`hotspots` in `bias.py` runs it seeded with the data's own rates. It is about areas and rounds,
never about people (OB-03).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from lanterne.observatory.store import ObservatoryError


class Allocation(StrEnum):
    """How the model turns its estimates into patrols."""

    TOP = "top"
    """The `top` highest-ranked areas share the patrols, the others get none (a hotspot map)."""
    PROPORTIONAL = "proportional"
    """Patrols in proportion to the estimates (Ensign et al.'s urn): every area keeps a chance."""


class Update(StrEnum):
    """What the model learns from after each round."""

    NAIVE = "naive"
    """Every record, discovered or reported: what a model trained on the records does."""
    REPORTED = "reported"
    """Reported incidents only (mitigation 1)."""
    REWEIGHTED = "reweighted"
    """Reported incidents plus discovered ones weighted by 1 / observation probability
    (mitigation 2; needs `Allocation.PROPORTIONAL`)."""


@dataclass(frozen=True)
class FeedbackResult:
    """One simulated run. Arrays indexed by round hold the state at the start of that round's
    patrols (after the previous round's update)."""

    allocation: Allocation
    update: Update
    rounds: int
    top: int
    discovered_share: float
    true_shares: np.ndarray
    """Each area's share of the true incidents (the target a fair allocation would follow)."""
    true_top_share: float
    """Share of true incidents in the `top` highest-rate areas."""
    patrol_top_share: np.ndarray
    """Per round: share of patrols going to the `top` most-patrolled areas."""
    record_top_share: np.ndarray
    """Per round: share of the model's estimated incidents in its own `top` areas (what a
    hotspot map built from these records would show)."""
    patrol_on_true_top: np.ndarray
    """Per round: share of patrols going to the `top` areas with the highest true rate."""
    allocation_gap: np.ndarray
    """Per round: total-variation distance between patrol shares and true shares (0 = patrols
    follow the true rates, 1 = disjoint)."""
    estimate_gap: np.ndarray
    """Per round: total-variation distance between the model's estimated shares and true shares."""
    final_allocation: np.ndarray

    @property
    def final_record_top_share(self) -> float:
        return float(self.record_top_share[-1])

    @property
    def final_estimate_gap(self) -> float:
        return float(self.estimate_gap[-1])

    @property
    def final_patrol_on_true_top(self) -> float:
        return float(self.patrol_on_true_top[-1])


def _top_indices(values: np.ndarray, top: int, tiebreak: np.ndarray) -> np.ndarray:
    # lexsort sorts by the last key first: value descending, then a random key so that equal
    # estimates (all areas at the start) are not always resolved in favour of the first area.
    return np.lexsort((tiebreak, -values))[:top]


def feedback_loop(
    rates: np.ndarray,
    *,
    rounds: int = 365,
    discovered_share: float = 1.0,
    allocation: Allocation | str = Allocation.TOP,
    update: Update | str = Update.NAIVE,
    top: int = 1,
    patrols: float = 1.0,
    prior: float = 1.0,
    seed: int = 0,
) -> FeedbackResult:
    """Replay `rounds` rounds of rank → patrol → record → re-rank.

    `rates`: true expected incidents per area and round (e.g. victim-reported counts per day).
    `discovered_share`: share of incidents that only a patrol can find; the rest are reported
    by residents wherever patrols are. `patrols`: areas' worth of patrol attention per round; an
    area receiving share a of the patrols sees each discoverable incident with probability
    min(1, a × patrols). `prior`: the model's starting pseudo-count per area (a model that knows
    nothing yet). Deterministic for a given `seed`.

    >>> r = feedback_loop(np.array([1.0, 1.05, 0.95]), rounds=200, seed=1)
    >>> round(r.final_record_top_share, 2) > 0.9   # the naive hotspot map claims one area has it all
    True
    """
    allocation = Allocation(allocation)
    update = Update(update)
    lam = np.asarray(rates, dtype=float)
    if lam.ndim != 1 or lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam < 0) or lam.sum() <= 0:
        raise ObservatoryError("feedback simulation needs one non-negative rate per area, not all zero")
    if not 0.0 <= discovered_share <= 1.0:
        raise ObservatoryError(f"discovered_share {discovered_share} must be between 0 and 1")
    if rounds < 1 or not 1 <= top <= lam.size or patrols <= 0 or prior <= 0:
        raise ObservatoryError(
            f"feedback simulation needs rounds ≥ 1, 1 ≤ top ≤ {lam.size} areas, patrols > 0 and prior > 0"
        )
    if update is Update.REWEIGHTED and allocation is Allocation.TOP:
        raise ObservatoryError(
            "reweighting needs every area to keep a chance of a patrol; "
            "use allocation='proportional' or update='reported'"
        )
    rng = np.random.default_rng(seed)
    n = lam.size
    true_shares = lam / lam.sum()
    true_top = _top_indices(lam, top, np.arange(n, dtype=float))
    weights = np.full(n, float(prior))
    patrol_top = np.empty(rounds)
    record_top = np.empty(rounds)
    on_true_top = np.empty(rounds)
    allocation_gap = np.empty(rounds)
    estimate_gap = np.empty(rounds)
    shares = weights / weights.sum()
    cut = n - top  # np.partition puts the `top` largest values after this index
    for t in range(rounds):
        if allocation is Allocation.TOP:
            shares = np.zeros(n)
            shares[_top_indices(weights, top, rng.random(n))] = 1.0 / top
        else:
            shares = weights / weights.sum()
        estimates = weights / weights.sum()
        # Sums of the `top` largest values do not depend on how ties are ordered: partition
        # (linear) instead of a sort per round.
        patrol_top[t] = np.partition(shares, cut)[cut:].sum()
        record_top[t] = np.partition(estimates, cut)[cut:].sum()
        on_true_top[t] = shares[true_top].sum()
        allocation_gap[t] = 0.5 * np.abs(shares - true_shares).sum()
        estimate_gap[t] = 0.5 * np.abs(estimates - true_shares).sum()

        incidents = rng.poisson(lam)
        discoverable = rng.binomial(incidents, discovered_share)
        reported = incidents - discoverable
        observed = np.minimum(1.0, shares * patrols)
        discovered = rng.binomial(discoverable, observed)
        if update is Update.NAIVE:
            weights = weights + discovered + reported
        elif update is Update.REPORTED:
            weights = weights + reported
        else:
            # Expected discovered / observed = discoverable: the inverse-probability weight
            # undoes the patrols' influence on what gets recorded.
            weights = (
                weights + reported + np.divide(discovered, observed, out=np.zeros(n), where=observed > 0)
            )
    return FeedbackResult(
        allocation=allocation,
        update=update,
        rounds=rounds,
        top=top,
        discovered_share=discovered_share,
        true_shares=true_shares,
        true_top_share=float(true_shares[true_top].sum()),
        patrol_top_share=patrol_top,
        record_top_share=record_top,
        patrol_on_true_top=on_true_top,
        allocation_gap=allocation_gap,
        estimate_gap=estimate_gap,
        final_allocation=shares,
    )

"""A plan that found no SIM, as the one error the requester sees: which code, which reasons,
and when the earliest refused SIM frees up.

Pure: it reads :class:`~simbank.bank.rotation.Plan` (one modem) or
:class:`~simbank.bank.rotation.GatewayPlan` (every modem) and builds a ``Refused``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from simbank.bank.policy import Refusal
from simbank.bank.rotation import GatewayPlan, Plan
from simbank.errors import Refused


def plan_refusal(decision: Plan) -> Refused:
    """Why one modem's plan cannot act: its shared refusal code (or ``no_eligible_sim``)."""
    return _refused(decision.error_code, decision.refusals.values(), decision.unusable)


def gateway_refusal(choice: GatewayPlan) -> Refused:
    """Why no modem of the gateway can act: every modem's refusals together, under the code
    they all share (or ``no_eligible_sim``)."""
    refusals = [*choice.plan.refusals.values()]
    for other in choice.plans.values():
        refusals += other.refusals.values()
    return _refused(choice.error_code, refusals, choice.plan.unusable)


def _refused(code: str, refusals: Iterable[Refusal], unusable: Mapping[int, str]) -> Refused:
    found = list(refusals)
    frees = [r.frees_at for r in found if r.frees_at is not None]
    reasons = sorted({f"{r.limit or r.code}: {r.message}" for r in found})
    message = "; ".join(reasons) or (
        f"no eligible SIM ({', '.join(f'slot {k}: {v}' for k, v in unusable.items())})"
        if unusable
        else "no eligible SIM"
    )
    return Refused(
        code,
        message,
        frees_at=min(frees, default=None),
        limits=sorted({r.limit for r in found if r.limit}),
    )

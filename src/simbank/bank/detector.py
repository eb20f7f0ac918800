"""Block detection (DESIGN §4): modem observations in, verdicts with their evidence out.

Pure: no I/O, no clock. Every method takes ``now`` (epoch seconds) and returns the verdicts
it reached, each once per transition. Rules:

* registration denied (stat 3) with no domain registered, lasting ``denied_confirm_s`` and
  still denied when confirmed → ``blocked`` / ``registration_denied``;
* a permanent reject cause (#2, #3, #6, #7, #8) while not registered → ``blocked`` at once;
* stat 0/2 for ``searching_timeout_s`` with signal ≥ ``searching_min_rssi_dbm`` while another
  SIM of the same operator registers → ``suspected`` with ``action="reattach"``; once the
  daemon reports the re-attach, still unregistered after the grace → ``blocked``;
* PUK (``+CPIN: SIM PUK``, a CME code in ``SIM_PUK_CODES``, e.g. 12) → ``locked`` /
  ``puk_locked``; a code in ``SIM_BLOCKED_CODES`` (262) → ``locked`` / ``sim_blocked``. The
  codes come from the one table in :mod:`simbank.at.codes`; CME 18 (SIM PUK2 required) is
  not a lock;
* call causes 8, 50, 57, 68, or cause 21 to ``barred_cause_21_count`` different destinations
  within a day → ``blocked`` / ``calls_barred``;
* an SMS refused with +CMS ERROR 8 or 10 (barred) → ``blocked`` / ``sms_barred``; with 21 or
  50 (rejected, not subscribed: perhaps only the destination or the plan) → ``suspected`` /
  ``sms_barred``;
* an operator SMS/USSD with a suspension keyword → ``suspected`` / ``operator_message``.

Any registered report (stat 1, 5, 6, 7, 9, 10 on any domain) ends a denial/searching episode;
stats 4, 8 and 11 neither start nor end one. Timers pause while the SIM is out of its modem's
active slot or +CPIN says it is not ready (PIN, absent, error).
``blocked`` and ``locked`` are sticky until :meth:`BlockDetector.release`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from simbank.at.codes import SIM_BLOCKED_CODES, SIM_PUK_CODES, CmsError
from simbank.bank.evidence import (
    DENIED_STAT,
    REASONS,
    REGISTERED_STATS,
    VERDICT_STATES,
    Observation,
    Reason,
    SimEvidence,
    Verdict,
    VerdictState,
    mask_numbers,
    observe,
)
from simbank.config.models import DetectionConfig

PERMANENT_REJECT_CAUSES = frozenset({2, 3, 6, 7, 8})  # TS 24.008 / 24.301 EMM/MM causes
BARRING_CALL_CAUSES = frozenset({8, 50, 57, 68})  # TS 24.008 Annex H
CALL_REJECTED_CAUSE = 21
CAUSE_21_WINDOW_S = 86400.0
SIM_STATUSES = frozenset({"ready", "pin", "puk", "absent", "error", "not_ready"})
VENDOR_CAUSE_TYPE = 1  # n=3 <cause_type> 1: the reject cause is vendor-specific
TEXT_LIMIT = 500


def _normalise_operator(operator: str | None) -> str | None:
    key = (operator or "").strip().casefold()
    return key or None


#: SMS refusals (24.011 RP causes as +CMS ERROR) that mean the SIM is barred from SMS.
SMS_BARRING_CODES = frozenset({CmsError.OPERATOR_DETERMINED_BARRING, CmsError.CALL_BARRED})
#: SMS refusals that may mean it (or only the destination, or the plan): the SIM is suspected.
SMS_DOUBT_CODES = frozenset(
    {CmsError.SHORT_MESSAGE_TRANSFER_REJECTED, CmsError.REQUESTED_FACILITY_NOT_SUBSCRIBED}
)


class BlockDetector:
    """Classifies SIM observations into ``suspected`` / ``blocked`` / ``locked`` verdicts."""

    def __init__(self, cfg: DetectionConfig, *, reattach_grace_s: float | None = None) -> None:
        self._cfg = cfg
        self._grace_s = (
            cfg.searching_timeout_s / 2 if reattach_grace_s is None else reattach_grace_s
        )
        self._tracks: dict[str, SimEvidence] = {}
        self._registered_at: dict[str, dict[str, float]] = {}  # operator → iccid → last seen
        self._keywords = [
            (kw, re.compile(rf"(?<![a-z0-9]){re.escape(kw.casefold())}(?![a-z0-9])"))
            for kw in cfg.suspension_keywords
            if kw.strip()
        ]

    # -- events ------------------------------------------------------------------------------

    def on_registration(
        self,
        iccid: str,
        now: float,
        *,
        domain: str,
        stat: int,
        reject_cause: int | None,
        rssi_dbm: int | None,
        operator: str | None,
        raw: str | None = None,
        cause_type: int | None = None,
    ) -> list[Verdict]:
        """A +CREG/+CGREG/+CEREG/+C5GREG report. ``operator`` is the SIM's home operator key
        (IMSI MCC+MNC or home operator name); ``cause_type`` 1 marks a vendor reject cause."""
        t = self._touch(iccid, now)
        if t.final:
            return []
        key = domain.strip().casefold()
        if (op := _normalise_operator(operator)) is not None and op != t.operator:
            self._forget_operator(t)
            t.operator = op
        if rssi_dbm is not None:
            t.rssi_dbm = rssi_dbm
        t.stats[key] = stat
        if stat in REGISTERED_STATS:
            t.reports[key] = (stat, None)
            t.set_running(now, present=True, unavailable=False)
            t.end_episode()
            if t.operator is not None:
                self._registered_at.setdefault(t.operator, {})[t.iccid] = now
            return []
        obs = observe(
            now,
            "registration",
            domain=key,
            stat=stat,
            reject_cause=reject_cause,
            cause_type=cause_type,
            rssi_dbm=rssi_dbm,
            operator=t.operator,
            raw=raw,
        )
        changed = t.reports.get(key) != (stat, reject_cause)
        if changed:  # repeated identical reports add nothing to the evidence
            t.note(obs)
        t.reports[key] = (stat, reject_cause)
        if t.registered:  # another domain is registered: this one's trouble is not a block
            return []
        t.arm(now)
        permanent = cause_type != VENDOR_CAUSE_TYPE and reject_cause in PERMANENT_REJECT_CAUSES
        if stat == DENIED_STAT and permanent:
            return self._final(
                t, "blocked", "reject_cause", t.episode if changed else [*t.episode, obs]
            )
        return self._evaluate(t, now)

    def on_sim_status(
        self,
        iccid: str,
        now: float,
        *,
        status: str,
        cme_code: int | None = None,
        raw: str | None = None,
    ) -> list[Verdict]:
        """What +CPIN (or its +CME ERROR) said: ready, pin, puk, absent, error, not_ready."""
        status = status.strip().casefold()
        if status not in SIM_STATUSES:
            raise ValueError(
                f"unknown SIM status {status!r}; expected one of {sorted(SIM_STATUSES)}"
            )
        t = self._touch(iccid, now)
        if t.final:
            return []
        obs = observe(now, "sim_status", status=status, cme_code=cme_code, raw=raw)
        if cme_code in SIM_BLOCKED_CODES:
            return self._final(t, "locked", "sim_blocked", [obs])
        if status == "puk" or cme_code in SIM_PUK_CODES:
            return self._final(t, "locked", "puk_locked", [obs])
        t.set_running(now, present=True, unavailable=status != "ready")
        return self._evaluate(t, now)

    def on_reject_cause(
        self, iccid: str, now: float, *, cause: int, source: str, raw: str | None = None
    ) -> list[Verdict]:
        """A reject cause read separately (e.g. AT+CEER after a registration failure).
        Ignored while the SIM is registered: the modem may be repeating a stale cause."""
        t = self._touch(iccid, now)
        if t.final or t.registered:
            return []
        masked = None if raw is None else mask_numbers(raw)  # free text: no numbers kept
        obs = observe(now, "reject_cause", cause=cause, source=source, raw=masked)
        t.note(obs)
        if cause in PERMANENT_REJECT_CAUSES:
            return self._final(t, "blocked", "reject_cause", t.episode)
        return self._evaluate(t, now)

    def on_call_failed(
        self,
        iccid: str,
        now: float,
        *,
        cause: int | None,
        destination_hash: str | None,
        raw: str | None = None,
    ) -> list[Verdict]:
        """An outbound call failed with a TS 24.008 cause (``None`` if unknown)."""
        t = self._touch(iccid, now)
        if t.final:
            return []
        masked = None if raw is None else mask_numbers(raw)
        obs = observe(
            now, "call_failed", cause=cause, destination_hash=destination_hash, raw=masked
        )
        if cause in BARRING_CALL_CAUSES:
            return self._final(t, "blocked", "calls_barred", [obs])
        if cause == CALL_REJECTED_CAUSE and destination_hash:
            t.cause21 = [o for o in t.cause21 if now - o.at <= CAUSE_21_WINDOW_S]
            t.cause21.append(obs)
            destinations = {o.detail["destination_hash"] for o in t.cause21}
            if len(destinations) >= self._cfg.barred_cause_21_count:
                return self._final(t, "blocked", "calls_barred", t.cause21)
        return []

    def on_sms_refused(self, iccid: str, now: float, *, cms: int, raw: str | None) -> list[Verdict]:
        """The network refused an SMS with a 24.011 RP cause that speaks of the SIM: operator
        determined barring (8) or barred (10) → ``blocked``; transfer rejected (21) or a
        facility not subscribed (50), which one destination or a plan can also cause →
        ``suspected`` (once, for the operator to verify). Both with reason ``sms_barred``."""
        t = self._touch(iccid, now)
        if t.final:
            return []
        obs = observe(now, "sms_refused", cms_error=cms, raw=None if raw is None else raw[:80])
        if cms in SMS_BARRING_CODES:
            return self._final(t, "blocked", "sms_barred", [obs])
        if cms in SMS_DOUBT_CODES and not t.text_suspected:
            t.text_suspected = True
            return [Verdict(t.iccid, "suspected", "sms_barred", (obs,))]
        return []

    def on_call_ok(self, iccid: str, now: float) -> None:
        """A call went through: earlier cause-21 rejections were about their destinations."""
        t = self._touch(iccid, now)
        t.cause21.clear()

    def on_operator_text(
        self, iccid: str, now: float, *, text: str, source: Literal["sms", "ussd"]
    ) -> list[Verdict]:
        """An SMS from the operator or a USSD answer; suspension keywords → suspected."""
        t = self._touch(iccid, now)
        if t.final or t.text_suspected:
            return []
        folded = text.casefold()
        keyword = next((kw for kw, rx in self._keywords if rx.search(folded)), None)
        if keyword is None:
            return []
        t.text_suspected = True
        shown = mask_numbers(text)[:TEXT_LIMIT]
        obs = observe(now, "operator_text", source=source, keyword=keyword, text=shown)
        return [Verdict(t.iccid, "suspected", "operator_message", (obs,))]

    def on_switched_away(self, iccid: str, now: float) -> None:
        """The SIM left its modem's active slot: its timers pause until it reports again.
        Switching back cycles the radio, so it also counts as a pending re-attach."""
        t = self._tracks.get(iccid)
        if t is None or t.final:
            return
        t.set_running(now, present=False, unavailable=False)
        t.forget_radio()
        if t.phase == "await_reattach":
            t.phase = "grace"
            t.grace.start(now, running=False)
            t.note(observe(now, "reattached", via="slot_switch"))

    def on_reattached(self, iccid: str, now: float) -> None:
        """The daemon cycled the radio; registration must now follow within the grace."""
        t = self._touch(iccid, now)
        if t.final:
            return
        t.forget_radio()
        if t.phase is not None:
            t.phase = "grace"
            t.grace.stop()
            t.grace.start(now, running=t.running)
            t.note(observe(now, "reattached", via="radio_cycle"))

    def tick(self, now: float) -> list[Verdict]:
        """Fire the timers that are due."""
        return [v for t in list(self._tracks.values()) for v in self._evaluate(t, now)]

    # -- operator commands and queries --------------------------------------------------------

    def release(self, iccid: str) -> None:
        """An operator released the SIM: forget everything about it."""
        t = self._tracks.pop(iccid, None)
        if t is not None:
            self._forget_operator(t)

    def restore(self, iccid: str, state: VerdictState, reason: Reason) -> None:
        """Re-load a state from the ledger after a restart, without emitting a verdict.
        A restored stuck-searching suspicion waits for registration like after a re-attach."""
        if state not in VERDICT_STATES or reason not in REASONS:
            raise ValueError(f"cannot restore {state!r} / {reason!r}")
        t = self._tracks.setdefault(iccid, SimEvidence(iccid, present=False))
        if state != "suspected":
            t.final = (state, reason)
            t.end_episode()
        elif reason == "stuck_searching":
            t.phase = "grace"
            t.grace.start(0.0, running=False)
        else:
            t.text_suspected = True

    def state_of(self, iccid: str) -> str | None:
        """``"blocked"``, ``"locked"``, ``"suspected"`` or ``None`` (nothing against it)."""
        t = self._tracks.get(iccid)
        return None if t is None else t.state

    # -- internals ----------------------------------------------------------------------------

    def _touch(self, iccid: str, now: float) -> SimEvidence:
        t = self._tracks.setdefault(iccid, SimEvidence(iccid))
        t.set_running(now, present=True, unavailable=t.sim_unavailable)
        return t

    def _forget_operator(self, t: SimEvidence) -> None:
        if t.operator is not None:
            self._registered_at.get(t.operator, {}).pop(t.iccid, None)

    def _signal_ok(self, t: SimEvidence) -> bool:
        return t.rssi_dbm is not None and t.rssi_dbm >= self._cfg.searching_min_rssi_dbm

    def _peer(self, t: SimEvidence, since: float) -> Observation | None:
        """Another SIM of the same operator registered since ``since`` (or registered now)."""
        if t.operator is None:
            return None
        for iccid, at in self._registered_at.get(t.operator, {}).items():
            other = self._tracks.get(iccid)
            if iccid != t.iccid and (at >= since or (other and other.present and other.registered)):
                return observe(at, "peer_registered", peer=iccid, operator=t.operator)
        return None

    def _evaluate(self, t: SimEvidence, now: float) -> list[Verdict]:
        if t.final or not t.running or t.registered:
            return []
        cfg = self._cfg
        denied = t.denied.elapsed(now)
        if t.denied_now and denied is not None and denied >= cfg.denied_confirm_s:
            timeout = self._timeout(now, "denied_confirm", denied, cfg.denied_confirm_s)
            return self._final(t, "blocked", "registration_denied", [*t.episode, timeout])
        if t.phase == "grace":
            grace = t.grace.elapsed(now)
            if grace is not None and grace >= self._grace_s and self._signal_ok(t):
                timeout = self._timeout(now, "reattach_grace", grace, self._grace_s, t.rssi_dbm)
                return self._final(t, "blocked", "stuck_searching", [*t.episode, timeout])
            return []
        searching = t.searching.elapsed(now)
        if (
            t.phase is None
            and t.searching_now
            and searching is not None
            and searching >= cfg.searching_timeout_s
            and self._signal_ok(t)
            and (peer := self._peer(t, now - searching)) is not None
        ):
            t.phase = "await_reattach"
            timeout = self._timeout(
                now, "searching", searching, cfg.searching_timeout_s, t.rssi_dbm
            )
            evidence = (*t.episode, peer, timeout)
            return [Verdict(t.iccid, "suspected", "stuck_searching", evidence, action="reattach")]
        return []

    @staticmethod
    def _timeout(
        now: float, timer: str, elapsed: float, limit: float, rssi_dbm: int | None = None
    ) -> Observation:
        return observe(
            now, "timeout", timer=timer, elapsed_s=elapsed, limit_s=limit, rssi_dbm=rssi_dbm
        )

    def _final(
        self, t: SimEvidence, state: VerdictState, reason: Reason, evidence: Iterable[Observation]
    ) -> list[Verdict]:
        verdict = Verdict(t.iccid, state, reason, tuple(evidence))  # copy before the reset
        t.final = (state, reason)
        t.end_episode()
        return [verdict]

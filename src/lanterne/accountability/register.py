"""The register-of-processing entry (GDPR art. 30, LED art. 24, GV-03), generated from the
configuration and the store so that it cannot say something the deployment does not do.

A DPO keeps this entry by hand in most cities, and it drifts: a camera added, a webhook to a new
partner, a retention shortened. Here every field is read from what runs: the controller and the
DPO from `public`, the purposes from the authorisations in force or upcoming (the event types
they authorise, their legal basis), the recipients from those authorisations and the configured
destinations, each retention from its setting, the security measures from the settings that
enforce them. What the configuration leaves empty is listed under `missing`, never invented.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lanterne.accountability.authorisation import Authorisations

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from lanterne.audit import AuditLog
    from lanterne.config.schema import Config

TRANSFERS = "none: no personal data leaves the European Union, and no third country or international organisation receives any"


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def entry(cfg: Config, engine: Engine, audit: AuditLog, *, now: datetime | None = None) -> dict[str, Any]:
    """The entry as a JSON-ready mapping (the shape `render_markdown` writes out)."""
    from lanterne.accountability.outbound import MQTT, WEBHOOK_PREFIX, destinations
    from lanterne.config import config_hash
    from lanterne.config.schema import Mode

    now = datetime.now(UTC) if now is None else now
    register = Authorisations(engine, audit, cfg.legal_end_date)
    current = [a for a in register.list() if a.state(now) in ("active", "upcoming")]
    alerting = cfg.mode is Mode.ALERTS
    authorised_types = sorted({str(t) for a in current for t in a.event_types}) if alerting else []
    in_force = register.authorised_recipients(now)
    recipients: list[dict[str, Any]] = [
        {
            "recipient": r,
            "authorised_by": sorted(a.reference for a in current if a.recipients and r in a.recipients),
        }
        for r in sorted({r for a in current for r in (a.recipients or ())})
    ]
    for d in destinations(cfg.outbound):
        name = d.removeprefix(WEBHOOK_PREFIX) if d != MQTT else MQTT
        recipients.append(
            {
                "recipient": name,
                "channel": "mqtt" if d == MQTT else "webhook",
                "what": "confirmed alerts: type, camera, zone, times, follow-up; no picture",
                "authorised": in_force is None or name in in_force,
            }
        )
    recording = alerting and any(c.record != "off" for c in cfg.cameras)
    data = [
        "events: event type, camera, zone, start and end times, detector scores and boxes of objects; no identity",
        "counts per camera and zone over "
        f"{cfg.statistics_bucket_seconds} s buckets (aggregates, no person can be singled out)",
        "agents' accounts and the audit log of their actions (user ids, purposes, recipients)",
    ]
    if alerting:
        data.insert(
            1, "anonymised snapshots and clips of alerts (faces and licence plates blurred, privacy masks)"
        )
    if recording:
        data.insert(2, "camera recordings, encrypted (AES-256-GCM), around events or continuous per camera")
    retention = {
        "events_and_evidence_days": cfg.retention.evidence_days,
        "audit_log_days": cfg.audit.retention_days,
    }
    if recording:
        retention["recordings_days"] = cfg.recording.retention_days
    security = [
        "no face recognition, biometrics, re-identification, attribute search or audio (refused by design and by tests)",
        "model files checked by sha256 before loading; known face-recognition and re-identification models refused",
        "privacy masks painted before any analysis; faces and plates blurred on every picture shown",
        "roles and camera scopes per account; a second factor (TOTP) and a recorded habilitation to see video",
        f"audit log hash-chained and signed (Ed25519) every {cfg.audit.checkpoint_every} records"
        f" or {cfg.audit.checkpoint_seconds:g} s"
        + (", heads witnessed in a file outside the database" if cfg.audit.witness_file else ""),
    ]
    if recording:
        security.append("recordings encrypted as written, keys outside the database, segments hash-chained")
    missing = [
        f"public.{name}" for name in ("controller", "dpo_contact") if not getattr(cfg.public, name).strip()
    ]
    if alerting and not current:
        missing.append("an authorisation in force or upcoming (lanterne authorisation add)")
    return {
        "generated_at": _iso(now),
        "site": cfg.site,
        "config_sha256": config_hash(cfg),
        "controller": cfg.public.controller,
        "dpo": cfg.public.dpo_contact,
        "mode": str(cfg.mode),
        "purposes": {
            "stated": list(cfg.public.purposes),
            "authorised_event_types": authorised_types,
            "statistics": "counting people and vehicles per zone, without alerting"
            if not alerting
            else "counting people and vehicles per zone",
        },
        "legal_bases": [
            {
                "reference": a.reference,
                "legal_basis": a.legal_basis,
                "authority": a.authority,
                "manifestation": a.manifestation,
                "responsible_service": a.responsible_service,
                "event_types": [str(t) for t in a.event_types],
                "cameras": list(a.cameras),
                "from": _iso(a.valid_from),
                "until": _iso(a.valid_until),
                "state": a.state(now),
            }
            for a in current
        ],
        "data_subjects": f"people present in the public spaces filmed by {len(cfg.cameras)} cameras",
        "cameras": [c.id for c in cfg.cameras],
        "data_categories": data,
        "recipients": recipients,
        "retention": retention,
        "security_measures": security,
        "transfers": TRANSFERS,
        "missing": missing,
    }


def render_json(e: dict[str, Any]) -> str:
    return json.dumps(e, indent=2, ensure_ascii=False) + "\n"


def render_markdown(e: dict[str, Any]) -> str:
    """The entry as the DPO pastes it into the city's register."""
    lines = [
        f"# Register of processing: {e['site']}",
        "",
        f"Generated {e['generated_at']} from configuration `{e['config_sha256'][:12]}` (GDPR art. 30).",
        "",
        f"- **Controller**: {e['controller'] or '(not configured: public.controller)'}",
        f"- **Data-protection officer**: {e['dpo'] or '(not configured: public.dpo_contact)'}",
        f"- **Mode**: {e['mode']}",
        "",
        "## Purposes",
        "",
        *[f"- {p}" for p in e["purposes"]["stated"]],
        f"- Authorised event types: {', '.join(e['purposes']['authorised_event_types']) or 'none (no alerting)'}",
        f"- Statistics: {e['purposes']['statistics']}",
        "",
        "## Legal bases",
        "",
    ]
    for a in e["legal_bases"]:
        extra = "".join(
            f", {label} {a[key]}"
            for key, label in (("manifestation", "for"), ("responsible_service", "responsible service"))
            if a[key]
        )
        lines.append(
            f"- {a['reference']} ({a['state']}): {a['legal_basis']}, {a['authority']}{extra}; "
            f"{', '.join(a['event_types'])} on {', '.join(a['cameras'])} from {a['from']} until {a['until']}"
        )
    if not e["legal_bases"]:
        lines.append("- none recorded: cameras count only")
    lines += ["", "## Data subjects and categories of data", "", f"- Data subjects: {e['data_subjects']}"]
    lines += [f"- {d}" for d in e["data_categories"]]
    lines += ["", "## Recipients", ""]
    for r in e["recipients"]:
        if "channel" in r:
            flag = "" if r["authorised"] else " (NOT named by an authorisation in force: refused)"
            lines.append(f"- {r['recipient']} by {r['channel']}: {r['what']}{flag}")
        else:
            lines.append(f"- {r['recipient']} (named by {', '.join(r['authorised_by'])})")
    lines.append("- the controller's habilitated agents, by role and camera scope")
    lines += ["", "## Retention", ""]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in e["retention"].items()]
    lines += ["", "## Security measures", ""]
    lines += [f"- {m}" for m in e["security_measures"]]
    lines += ["", "## Transfers outside the EU", "", f"- {e['transfers']}"]
    if e["missing"]:
        lines += ["", "## Missing", ""]
        lines += [f"- {m}" for m in e["missing"]]
    return "\n".join(lines) + "\n"

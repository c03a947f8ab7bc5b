"""The one configuration schema: it validates the YAML, generates `docs/config.md`, and can
drive settings forms. Every field has a title and a description because the generated reference
is the only manual an installer reads."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, Field, create_model, field_validator, model_validator

from lanterne.core.params import Strict, check_classes
from lanterne.core.types import EventType
from lanterne.rules import EVENTS, weapon


def _refuse_duplicates(what: str, ids: list[str]) -> None:
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"{what} {sorted(dup)[0]!r} is used twice")


class _ZoneEventsBase(Strict):
    """What `ZoneEvents` adds to the fields it gets from the rule modules."""

    @model_validator(mode="after")
    def _no_weapon(self) -> Self:
        if getattr(self, EventType.WEAPON) is not None:
            raise ValueError(weapon.MESSAGE)
        return self

    def enabled(self) -> dict[EventType, BaseModel]:
        return {
            EventType(name): getattr(self, name)
            for name in type(self).model_fields
            if getattr(self, name) is not None
        }


# One optional key per event type, built from the rule modules so that a new type is declared
# once, beside its rule; unknown keys stay errors (`Strict`), which keeps the list closed.
ZoneEvents = create_model(
    "ZoneEvents",
    __base__=_ZoneEventsBase,
    __module__=__name__,
    **{
        str(t): (
            info.params | None,
            Field(None, title=info.key_title or info.title, description=info.summary),
        )
        for t, info in EVENTS.items()
    },
)


Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


class Zone(Strict):
    id: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        title="Zone id",
        description="Unique within the camera; letters, digits, `_ . -`.",
    )
    polygon: list[Point] = Field(
        ...,
        title="Polygon",
        description="Corners as `[x, y]` fractions of the frame width and height (0..1), in order.",
    )
    events: ZoneEvents = Field(
        default_factory=ZoneEvents,
        title="Events",
        description="The event types watched in this zone, with their parameters.",
    )

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: list[Point]) -> list[Point]:
        if len(v) < 3:
            raise ValueError("needs at least 3 points")
        return v


class PrivacyMask(Strict):
    """A part of the picture nobody may see or analyse (LB-06: the inside of dwellings and their
    entrances, CSI L251-3)."""

    id: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        title="Mask id",
        description="Unique within the camera; letters, digits, `_ . -`.",
    )
    polygon: list[Point] = Field(
        ...,
        title="Polygon",
        description="Corners as `[x, y]` fractions of the frame width and height (0..1), in order. Painted flat grey before analysis and on every picture shown or exported, the privileged ones included.",
    )
    reason: str = Field(
        "",
        max_length=200,
        title="Reason",
        description="What the mask hides, e.g. `windows of no. 12` or `entrance of the building`.",
    )

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: list[Point]) -> list[Point]:
        if len(v) < 3:
            raise ValueError("needs at least 3 points")
        return v


class MotionMask(Strict):
    """Changes here never wake the detector (an on-screen clock, a flag), but nothing is hidden.

    Unlike a privacy mask it hides nothing: the detector still looks there whenever motion
    elsewhere, a tracked object or the periodic refresh makes it examine the frame, so a person
    walking through a masked caption is still detected, tracked and anonymised."""

    id: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        title="Motion mask id",
        description="Unique within the camera; letters, digits, `_ . -`.",
    )
    polygon: list[Point] = Field(
        ...,
        title="Polygon",
        description="Corners as `[x, y]` fractions of the frame width and height (0..1), in order, as for zones. Changes inside are not motion: the motion gate grows the polygon by about 1% of the frame width, so the soft edge of a changing clock does not leak out of it; draw it around the clock or caption, not around where people walk.",
    )
    reason: str = Field(
        "",
        max_length=200,
        title="Reason",
        description="What changes there, e.g. `on-screen clock` or `flag on the town hall`.",
    )

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: list[Point]) -> list[Point]:
        if len(v) < 3:
            raise ValueError("needs at least 3 points")
        return v


class Location(Strict):
    lat: float = Field(..., ge=-90, le=90, title="Latitude", description="WGS84 degrees.")
    lon: float = Field(..., ge=-180, le=180, title="Longitude", description="WGS84 degrees.")


class Camera(Strict):
    id: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        title="Camera id",
        description="Unique id; letters, digits, `_ . -`.",
    )
    name: str = Field(
        "", max_length=200, title="Name", description="Human-readable name shown in the console."
    )
    source: str = Field(
        ...,
        min_length=1,
        title="Source",
        description="A video file path (relative to the config file) or an `rtsp://` / `rtsps://` address.",
    )
    location: Location = Field(
        ..., title="Location", description="Where the camera is, for the map and the public register."
    )
    fps: float = Field(
        5.0,
        gt=0,
        le=30,
        title="Analysis rate (fps)",
        description="Frames analysed per second; decoded frames in between are skipped. 5 is enough for every rule.",
    )
    zones: list[Zone] = Field(
        default_factory=list, title="Zones", description="Areas of the image watched for events."
    )
    privacy_masks: list[PrivacyMask] = Field(
        default_factory=list,
        title="Privacy masks",
        description="Areas of the image that are never analysed, shown or exported (LB-06), such as the windows and entrances of dwellings.",
    )
    motion_masks: list[MotionMask] = Field(
        default_factory=list,
        title="Motion masks",
        description="Areas whose changes do not count as motion, so that an on-screen clock (OSD), a caption or a waving flag does not run the detector on every frame of an otherwise still scene. The detector, the rules and the pictures are unaffected: objects inside are still detected, tracked and anonymised. Not a privacy measure (see `privacy_masks`), and a person moving only inside one is found at the next refresh; docs/motion.md.",
    )
    record: Literal["continuous", "events", "off"] = Field(
        "events",
        title="Recording",
        description="`continuous` keeps the camera's own stream (encrypted, never re-encoded, no audio) for `recording.retention_days`; `events` records the same way but keeps only the segments within `recording.event_margin_seconds` of an event; `off` records nothing. Statistics mode never records, whatever this says.",
    )

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if "://" in v and not v.startswith(("rtsp://", "rtsps://", "file://")):
            raise ValueError("must be a file path or an rtsp:// address")
        return v

    @model_validator(mode="after")
    def _unique_zones(self) -> Camera:
        _refuse_duplicates("zone id", [z.id for z in self.zones])
        _refuse_duplicates("privacy mask id", [m.id for m in self.privacy_masks])
        _refuse_duplicates("motion mask id", [m.id for m in self.motion_masks])
        return self


class Mode(StrEnum):
    ALERTS = "alerts"
    STATISTICS = "statistics"


class DetectorSettings(Strict):
    backend: Literal["onnxruntime"] = Field(
        "onnxruntime", title="Backend", description="Detector plugin; `onnxruntime` runs on the CPU."
    )
    model: Literal["yolox_nano"] = Field(
        "yolox_nano", title="Model", description="Object-detection model from the model registry."
    )
    input_size: Literal[320, 416] = Field(
        416,
        title="Input size",
        description="Network input in pixels: the square's side, or the long side with `input_shape: frame`. 416 runs the published YOLOX-Nano file; 320 runs the same network from a copy whose input size is left open (`yolox_nano_dynamic`, derived from it and checked by sha256), 1.6 times cheaper per call, with person recall 0.90 instead of 0.91 and fewer false boxes (precision 0.87 instead of 0.78) on PETS 2009. Motion gating crops and zooms moving regions so that small objects still reach the network at a useful size.",
    )
    input_shape: Literal["square", "frame"] = Field(
        "square",
        title="Input shape",
        description="`square` letterboxes every frame into an input_size x input_size square; `frame` cuts the input to the frame's aspect: the long side at input_size, the short side padded only up to the next multiple of 32 (the network's largest stride), at the same scale, so the same pixels reach the network without most of the padding (a 640x360 camera runs at 416x256 instead of 416x416, where 44 % of the square is padding). It runs the open-dims copy (`yolox_nano_dynamic`) at either size. A motion-gated crop is then the moving region itself rather than a square around it, at the same scale (a walker's tall region costs about a third of its square). Measured on a 2-core CPU, one thread, PETS 2009 at 5 fps (`benchmarks/per_frame_costs.py`): at 416 a call costs 1.57 times less on a 640x360 frame and 1.29 times less on PETS's 768x576, with the same persons (recall 0.909 instead of 0.910, precision 0.777 instead of 0.778; boxes within a pixel, rarely 3); at 320 the call is 2.56 times cheaper than the 416 square on a 640x360 frame, recall 0.901, precision 0.883. Through the whole pipeline (motion gate, crops, tracker; `benchmarks/end_to_end.py --scenes pets --cameras '' --variant frame416:detector.input_shape=frame`): statistics 7.64 streams per core instead of 6.58, tracked-person recall/precision 0.866/0.784 instead of 0.869/0.781. Switching loads another model file: record it (`lanterne governance`, GV-05).",
    )
    threads: int = Field(
        1, ge=1, le=64, title="Threads", description="onnxruntime intra-op threads per camera worker."
    )
    default_threshold: float = Field(
        0.3,
        gt=0,
        lt=1,
        title="Default score threshold",
        description="Detections scoring below this are dropped, unless a class threshold says otherwise.",
    )
    class_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"backpack": 0.15, "handbag": 0.15, "suitcase": 0.15},
        title="Per-class thresholds",
        description="Score thresholds per COCO class. Bags score low with small models, so they get their own.",
    )
    interval_seconds: float = Field(
        0.0,
        ge=0,
        le=5,
        title="Detection interval (s)",
        description="0 runs the detector on every analysed frame. Above 0 it runs at most once per this many seconds of stream time, and between runs the tracked boxes are moved by optical flow of the pixels inside them (motion only, nothing that could recognise a person); this divides the dearest step's cost at some loss of recall on fast or crowded scenes. A box whose motion cannot be followed is held, then dropped after the tracker's loss time (2 s).",
    )

    @field_validator("class_thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        check_classes(list(v))
        for k, t in v.items():
            if not 0 < t < 1:
                raise ValueError(f"{k}: threshold must be between 0 and 1")
        return v


class MotionSettings(Strict):
    enabled: bool = Field(
        True,
        title="Motion gating",
        description="Run the detector only where pixels changed. Static scenes then cost little more than decoding.",
    )
    threshold: int = Field(
        25,
        ge=1,
        le=255,
        title="Pixel threshold",
        description="Grey-level difference from the running background that counts as change.",
    )
    min_area: float = Field(
        0.0005,
        ge=0,
        le=1,
        title="Minimum area",
        description="Changed share of the frame below which the frame counts as static.",
    )
    refresh_seconds: float = Field(
        5.0,
        gt=0,
        le=600,
        title="Refresh (s)",
        description="The detector runs at least this often even on a static scene, so that still objects stay tracked.",
    )
    max_regions: int = Field(
        1,
        ge=0,
        le=16,
        title="Maximum regions",
        description="Each motion region is one detector call at full network size, so past this many the whole frame is examined once instead. 1 is cheapest on a CPU; 2-4 zoom better on small, distant objects at a higher cost; 0 always examines the whole frame.",
    )
    flow: Literal["farneback", "dis"] = Field(
        "farneback",
        title="Optical flow",
        description="Dense optical flow measuring crowd motion for `crowd_movement`. `dis` (OpenCV's DIS, ultrafast preset) computes the flow 13-20 times cheaper than `farneback` (2.3 times per frame once the shared resize is counted) and raises the same events on the PETS 2009 tests.",
    )


class StoreSettings(Strict):
    url: str = Field(
        "sqlite:///lanterne.db",
        title="Database URL",
        description="SQLAlchemy URL. SQLite (relative to the config file) by default; `postgresql+psycopg://…` for larger sites.",
    )
    evidence_dir: Path = Field(
        Path("evidence"),
        title="Evidence directory",
        description="Where anonymised snapshots and clips are written (relative to the config file).",
    )


def _legal_cap(days: int) -> int:
    """CSI L252-5: recordings are kept one month at most, here 30 days, for evidence and recorded
    video alike; a court's need is a legal hold, not a longer retention."""
    if days > 30:
        raise ValueError(
            "recordings may not be kept more than 30 days (CSI L252-5); use a legal hold for evidence a court needs"
        )
    return days


LegalDays = Annotated[int, AfterValidator(_legal_cap)]


class RetentionSettings(Strict):
    evidence_days: LegalDays = Field(
        30,
        ge=1,
        title="Evidence retention (days)",
        description="Snapshots, clips and alerts are deleted after this many days, unless under legal hold. French law caps recordings at one month (CSI L252-5): more than 30 is refused.",
    )
    purge_interval_minutes: int = Field(
        60,
        ge=1,
        le=1440,
        title="Purge interval (minutes)",
        description="How often `lanterne run` deletes what is past retention.",
    )


class RecordingSettings(Strict):
    dir: Path = Field(
        Path("recordings"),
        title="Recordings directory",
        description="Where the cameras' encrypted segments are written (relative to the config file). Nothing in it is readable without the key file.",
    )
    key_file: Path = Field(
        Path("recording-keys.json"),
        title="Key file",
        description="The AES-256 keys that encrypt the segments (relative to the config file); created with mode 0600 on first use and refused if other users can read it. Keep it out of the database and its backups; `lanterne recordings rotate-key` adds a key.",
    )
    segment_seconds: int = Field(
        10,
        ge=2,
        le=60,
        title="Segment length (s)",
        description="A new segment starts at the first keyframe after this many seconds, so a segment is usually one keyframe interval longer. Shorter segments lose less on a crash and delete closer to the limit.",
    )
    retention_days: LegalDays = Field(
        30,
        ge=1,
        title="Recording retention (days)",
        description="Segments are deleted after this many days, unless a legal hold covers them. French law caps recordings at one month (CSI L252-5): more than 30 is refused.",
    )
    storage_cap_gb: float | None = Field(
        None,
        gt=0,
        title="Storage cap (GB)",
        description="When the segments take more than this, the oldest ones not under a legal hold are deleted first, and the deletion is recorded and logged as a warning. None: only the disk's size limits them (a full disk does the same).",
    )
    event_margin_seconds: int = Field(
        30,
        ge=0,
        le=600,
        title="Event margin (s)",
        description="For cameras with `record: events`: segments within this many seconds before or after an event are kept; the others are deleted once they are older than the margin.",
    )


class AuditSettings(Strict):
    retention_days: int = Field(
        365,
        title="Audit retention (days)",
        description="Audit records are kept this long: from 183 (6 months) to 1096 (3 years), as the CNIL recommends (délib. 2021-122).",
    )
    checkpoint_every: int = Field(
        100,
        ge=1,
        le=100_000,
        title="Checkpoint interval (records)",
        description="A signed checkpoint of the chain is written after this many records.",
    )
    key_path: Path = Field(
        Path("audit-signing.key"),
        title="Signing key",
        description="Ed25519 private key that signs checkpoints (relative to the config file); created on first use. Keep it away from the database.",
    )
    checkpoint_seconds: float = Field(
        60,
        ge=1,
        le=3600,
        title="Checkpoint interval (seconds)",
        description="A signed checkpoint is also written when the oldest unsigned record is this old, and a long-running process signs its head this often when records were written: deleting the newest records can hide at most this much time (docs/audit.md).",
    )
    witness_file: Path | None = Field(
        None,
        title="Witness file",
        description="Append-only file that receives a copy of every signed checkpoint (relative to the config file; default `audit-witness.jsonl` beside the signing key). In production put it on another volume than the database, append-only (`chattr +a`).",
    )

    @property
    def witness_path(self) -> Path:
        """The witness file in force: `witness_file`, or `audit-witness.jsonl` beside the key."""
        return self.witness_file or self.key_path.with_name("audit-witness.jsonl")

    @field_validator("retention_days")
    @classmethod
    def _range(cls, v: int) -> int:
        if not 183 <= v <= 1096:
            raise ValueError("must be between 183 (6 months) and 1096 (3 years) days")
        return v


class SuspensionSettings(Strict):
    max_alerts_per_hour: int = Field(
        20,
        ge=1,
        le=10_000,
        title="Maximum alerts per hour",
        description="A detector raising more alerts than this on one camera within an hour suspends itself there until a supervisor reviews it: a flood of alerts defeats human control (HO-04).",
    )
    precision_floor: float = Field(
        0.2,
        ge=0,
        le=1,
        title="Precision floor",
        description="A detector whose precision (confirmed ÷ decided) over the last decisions on a camera falls below this suspends itself there.",
    )
    last_decisions: int = Field(
        20,
        ge=1,
        le=10_000,
        title="Decisions considered",
        description="How many of the latest operator decisions the precision floor is measured on.",
    )


class PublicNotice(Strict):
    controller: str = Field(
        "",
        max_length=500,
        title="Controller",
        description="Who is responsible for the processing (e.g. 'Ville de Exemple, police municipale'), as shown on the public page.",
    )
    dpo_contact: str = Field(
        "",
        max_length=500,
        title="Data-protection officer",
        description="How to reach the data-protection officer (address or e-mail), shown on the public page.",
    )
    purposes: list[str] = Field(
        default_factory=list,
        title="Purposes",
        description="Why the cameras are used, in plain words, shown on the public page.",
    )
    rights: str = Field(
        "",
        max_length=5000,
        title="Your rights",
        description="How a person exercises their rights (access, complaint to the CNIL, referral to the commission départementale de vidéoprotection).",
    )


def _network(text: str) -> str:
    """One CIDR network, in its canonical spelling. An address with host bits set under its mask
    (`10.1.2.3/8`) is refused rather than widened: it is usually a typo for a narrower network,
    and silently opening the wider one is the mistake a whitelist exists to prevent."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(text.strip(), strict=True))
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not a CIDR network ({exc}); write it like 10.20.0.0/16, 192.0.2.7/32 or 2001:db8::/48"
        ) from None


Network = Annotated[str, AfterValidator(_network)]
LOOPBACK_NETWORKS = ["127.0.0.0/8", "::1/128"]


class ConsoleSettings(Strict):
    tile_url: str | None = Field(
        None,
        title="Map tiles",
        description="Base-layer tile URL template for the camera map, e.g. `https://tiles.example.org/{z}/{x}/{y}.png` on the city's own tile server. None: no tiles, the city's boundaries are drawn instead (works on an offline network).",
    )
    boundaries: Path | None = Field(
        None,
        title="Boundaries",
        description="GeoJSON file of the city's boundaries (districts, communes), drawn on the map when there is no tile URL (relative to the config file).",
    )
    idle_minutes: int = Field(
        15,
        ge=1,
        le=240,
        title="Idle timeout (min)",
        description="A session unused this long ends; the operator logs in again.",
    )
    session_hours: int = Field(
        12,
        ge=1,
        le=24,
        title="Session length (h)",
        description="A session ends this long after login whatever its use (one shift).",
    )
    max_failed_logins: int = Field(
        5,
        ge=1,
        le=100,
        title="Failed logins",
        description="Failed logins allowed per account and per address within 15 minutes before further attempts are refused for 15 minutes.",
    )
    allowed_networks: list[Network] = Field(
        LOOPBACK_NETWORKS,
        title="Allowed networks",
        description="CIDR networks of the workstations that may use the console (login page, pages, API, live wall); a request from any other address is refused with 403 and recorded, without its address (AC-04). The public notice under `/public` and the probes `/healthz`, `/readyz` and `/metrics` (its own token) stay open. Default: this machine only (loopback), so a site that serves the console to its control room lists that room's network, e.g. `[10.20.30.0/24]`; `lanterne serve` prints the list when it starts. An empty list is refused: to close the console, stop `lanterne serve`. `0.0.0.0/0` and `::/0` open it to every address, which `lanterne serve` says too.",
    )
    trusted_proxies: list[Network] = Field(
        LOOPBACK_NETWORKS,
        title="Trusted proxies",
        description="CIDR addresses of the reverse proxies in front of the console whose `X-Forwarded-For` header is believed (e.g. `10.20.0.5/32`): the client is the first address, read from the right, that is not a trusted proxy. A request from any other peer is judged by the address it connects from and its `X-Forwarded-For` is ignored (anyone can write one). Default: a proxy on this machine (loopback). The client address found here is also the one the login throttle counts; `lanterne serve` reads no other proxy setting (uvicorn's `FORWARDED_ALLOW_IPS` is not used).",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _some_network(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(
                "list at least one network (e.g. [10.20.30.0/24]); an empty list would leave nobody "
                "knowing who may use the console; to close the console, stop `lanterne serve`"
            )
        return v

    @field_validator("tile_url")
    @classmethod
    def _tiles(cls, v: str | None) -> str | None:
        if v is not None and not (
            v.startswith(("https://", "http://")) and "{z}" in v and "{x}" in v and "{y}" in v
        ):
            raise ValueError("must be an http(s) URL template with {z}, {x} and {y}")
        return v


class OidcRole(Strict):
    group: str = Field(
        ...,
        min_length=1,
        max_length=512,
        title="Group",
        description="A value of the groups claim (a directory group, an Azure AD app role, a Keycloak role), compared exactly.",
    )
    role: Literal["operator", "supervisor", "auditor", "admin", "analyst", "export_officer"] = Field(
        ..., title="Role", description="The Lanterne role of the directory's members of this group."
    )
    scope: list[str] = Field(
        ...,
        min_length=1,
        title="Camera scope",
        description="Camera ids the group's members may see, or `['*']` for every camera (checked against `cameras` at the first sign-in).",
    )

    @field_validator("scope")
    @classmethod
    def _scope(cls, v: list[str]) -> list[str]:
        items = sorted({s.strip() for s in v if s.strip()})
        if not items:
            raise ValueError("name at least one camera id, or '*' for every camera")
        if "*" in items and len(items) > 1:
            raise ValueError("a scope is either ['*'] (every camera) or a list of camera ids, not both")
        return items


def _loopback_http(url: str) -> bool:
    """Plain http is accepted only on this machine (a test provider); anywhere else the code, the
    tokens and the client secret would cross the network in clear."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


class OidcSettings(Strict):
    """City sign-in through the city's directory (OpenID Connect, docs/console.md, City sign-in)."""

    name: str = Field(
        "the city directory",
        min_length=1,
        max_length=80,
        title="Provider name",
        description="Shown on the login page's button: 'Sign in with <name>'.",
    )
    issuer: str = Field(
        ...,
        title="Issuer URL",
        description="The provider's issuer, exactly as its discovery document (`<issuer>/.well-known/openid-configuration`) and its ID tokens say it, e.g. `https://login.microsoftonline.com/<tenant>/v2.0` or `https://sso.ville.fr/realms/agents`. https only (http on the loopback for tests).",
    )
    client_id: str = Field(
        ...,
        min_length=1,
        max_length=256,
        title="Client id",
        description="Lanterne's client id at the provider.",
    )
    client_secret_file: Path = Field(
        ...,
        title="Client secret file",
        description="Absolute path of a file holding the client secret (never the secret itself in the configuration); read at each sign-in, never logged.",
    )
    redirect_url: str = Field(
        ...,
        title="Redirect URL",
        description="The console's callback as the browser reaches it, registered at the provider: `https://<console>/api/login/oidc/callback`.",
    )
    scopes: list[str] = Field(
        ["openid", "profile"],
        title="Scopes",
        description="Scopes asked for; `openid` is required. Add the one that releases the groups claim if the provider needs it (e.g. `groups`).",
    )
    login_claim: str = Field(
        "preferred_username",
        min_length=1,
        max_length=100,
        title="Login claim",
        description="The claim that carries the person's login. Lower-cased; an e-mail address keeps its part before '@' (`j.martin@ville.fr` signs in as `j.martin`); it must then be a valid Lanterne login.",
    )
    groups_claim: str = Field(
        "groups",
        min_length=1,
        max_length=100,
        title="Groups claim",
        description="The claim that carries the person's groups or roles; a dotted path reaches a nested one (Keycloak's `realm_access.roles`).",
    )
    roles: list[OidcRole] = Field(
        ...,
        min_length=1,
        title="Role mapping",
        description="Group → Lanterne role and camera scope. The first entry whose group the person has wins; a person in none of these groups is refused (and the refusal recorded).",
    )
    second_factor_amr: list[str] = Field(
        ["mfa", "otp"],
        title="Second factor (amr)",
        description="Authentication methods (the ID token's `amr`, RFC 8176) that mean the provider checked a second factor; any one of them is enough. Empty: `amr` is never trusted.",
    )
    second_factor_acr: list[str] = Field(
        [],
        title="Second factor (acr)",
        description="Assurance levels (the ID token's `acr`) that mean the provider checked a second factor. When the provider asserts none, the agent types their Lanterne TOTP code after signing in (every role needs a second factor).",
    )
    token_auth: Literal["client_secret_basic", "client_secret_post"] = Field(
        "client_secret_basic",
        title="Token endpoint authentication",
        description="How the client secret is sent to the token endpoint.",
    )

    @field_validator("issuer", "redirect_url")
    @classmethod
    def _https(cls, v: str) -> str:
        if not (v.startswith("https://") or _loopback_http(v)):
            raise ValueError("must be an https:// URL (http:// only on 127.0.0.1 or localhost)")
        return v

    @field_validator("client_secret_file")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        if not v.is_absolute():
            raise ValueError("must be an absolute path, e.g. /etc/lanterne/oidc-client-secret")
        return v

    @field_validator("scopes")
    @classmethod
    def _openid(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("must include 'openid'")
        return v

    @model_validator(mode="after")
    def _unique_groups(self) -> Self:
        _refuse_duplicates("oidc group", [r.group for r in self.roles])
        return self


class ClusterSettings(Strict):
    nats_url: str | None = Field(
        None,
        title="NATS URL",
        description="The NATS server (with JetStream) of a city deployment, e.g. `nats://10.0.0.5:4222`; `lanterne worker` and `lanterne ingest` need it (their `--nats` overrides it), `lanterne run` ignores it. docs/scaling.md.",
    )
    shards: int = Field(
        256,
        ge=1,
        le=4096,
        title="Shards",
        description="Cameras are grouped in this many shards by a hash of their id, and workers lease shards: 256 keeps renewals near 128 a second for 4,000 cameras. Every worker of a city must use the same number.",
    )
    lease_ttl_seconds: float = Field(
        6.0,
        ge=2.0,
        le=60.0,
        title="Lease TTL (s)",
        description="A worker that has not renewed its leases for this long loses its cameras to the others: a dead worker's cameras resume elsewhere within about this plus the time to open a stream. Every worker must use the same value.",
    )


class LiveSettings(Strict):
    enabled: bool = Field(
        True,
        title="Live wall",
        description="Serve the live wall (/console/wall): cameras watched live over WebRTC through Janus, anonymised unless protection is removed under a permission. Off: no live view at all.",
    )
    janus_url: str | None = Field(
        None,
        title="Janus URL",
        description="An existing Janus gateway's HTTP API (e.g. `http://10.0.0.7:8088/janus`), with `janus_admin_url` and `janus_admin_secret_file`. Unset: `lanterne serve` starts and configures its own Janus (Debian package `janus`) and restarts it if it dies.",
    )
    janus_admin_url: str | None = Field(
        None,
        title="Janus admin URL",
        description="The admin API of the Janus at `janus_url`, e.g. `http://10.0.0.7:7088/admin`.",
    )
    janus_ws_url: str | None = Field(
        None,
        title="Janus WebSocket URL",
        description="The WebSocket API of the Janus at `janus_url` (e.g. `ws://10.0.0.7:8188`), which the console relays the pages' sessions to.",
    )
    janus_admin_secret_file: Path | None = Field(
        None,
        title="Janus admin secret file",
        description="A file holding the admin secret of the Janus at `janus_url` (never the secret itself in the configuration).",
    )
    janus_binary: str = Field(
        "janus", title="Janus program", description="The program started for an own Janus."
    )
    rtp_host: str = Field(
        "127.0.0.1",
        title="RTP host",
        description="Where camera processes send the live pictures: the Janus machine's address as the workers reach it.",
    )
    relay_host: str = Field(
        "127.0.0.1",
        title="Fallback relay host",
        description="Where camera processes send the anonymised picture of a tile that plays without WebRTC (the MJPEG fallback): an address of the console's machine as the workers reach it; the console listens there on a free UDP port per camera watched that way.",
    )
    public_url: str | None = Field(
        None,
        title="Janus public URL",
        description="The Janus HTTP API as browsers reach it, when it differs from what Lanterne uses (a proxy). Default: the same.",
    )
    width: int = Field(
        640,
        ge=160,
        le=1920,
        title="Tile width (px)",
        description="Width of the live picture; the sub-stream size of a wall tile.",
    )
    height: int = Field(
        360, ge=90, le=1080, title="Tile height (px)", description="Height of the live picture."
    )
    fps: float = Field(
        10.0,
        gt=0,
        le=30,
        title="Live frame rate",
        description="Frames a second sent to the wall; a faster camera is decimated.",
    )
    stale_after_ms: int = Field(
        500,
        ge=50,
        le=5000,
        title="Detections too old (ms)",
        description="Fail closed: when the camera's detections are older than this, the whole live picture is pixelated, since a head could be anywhere.",
    )
    view_quiet_seconds: int = Field(
        30,
        ge=5,
        le=600,
        title="Quiet view ends (s)",
        description="A tile whose page has not confirmed it still plays for this long ends its view (recorded as `expired`).",
    )


class BoundaryLayer(Strict):
    id: str = Field(
        ...,
        pattern=r"^[a-z0-9_]{1,32}$",
        title="Layer id",
        description="Short name used in mapping files (`location.area.layer`) and in the console, e.g. `beats`, `arrondissements`.",
    )
    file: Path = Field(
        ..., title="GeoJSON file", description="Polygons of the areas (WGS84), relative to the config file."
    )
    key: str = Field(
        ...,
        title="Code property",
        description="Feature property holding each area's code, the value incident rows carry (e.g. `beat_num`, `c_arinsee`, `code`).",
    )
    label: str | None = Field(
        None, title="Label property", description="Feature property with a readable name (default: the code)."
    )


class ObservatorySettings(Strict):
    store: str = Field(
        "observatory.duckdb",
        title="Observatory store",
        description="DuckDB file holding ingested datasets and their provenance (relative to the config file), or for large deployments a PostgreSQL URL, `postgresql://user@host:5432/database` (schema other than `public`: `?options=-csearch_path%3Dobservatory`), which must not be the console store's database. The same queries run in either case (docs/observatory.md, PostgreSQL).",
    )
    min_count: int = Field(
        10,
        ge=5,
        le=100,
        title="Small-cell threshold k",
        description="A count below k is never shown outside the analyst role, and enough neighbouring cells are hidden with it that totals cannot recover it. 5 is the legal floor (OB-08); docs/observatory.md explains the default.",
    )
    layers: list[BoundaryLayer] = Field(
        default_factory=list,
        title="Boundary layers",
        description="Area polygons for choropleths and for datasets located by an area code.",
    )

    @model_validator(mode="after")
    def _unique_layers(self) -> ObservatorySettings:
        _refuse_duplicates("layer id", [layer.id for layer in self.layers])
        return self


class MqttSettings(Strict):
    url: str = Field(
        ...,
        title="Broker URL",
        description="`mqtt://host:1883` or `mqtts://host:8883` (TLS, checked against the system's certificate authorities).",
    )
    topic_prefix: str = Field(
        "lanterne",
        pattern=r"^[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64})*$",
        title="Topic prefix",
        description="First levels of every topic: confirmed alerts go to `<prefix>/<site>/events` and `<prefix>/<site>/<camera>/<type>`.",
    )
    username: str | None = Field(
        None, max_length=200, title="User name", description="Broker account, if it asks for one."
    )
    password_file: Path | None = Field(
        None,
        title="Password file",
        description="File holding the broker account's password (relative to the config file); read at each connection, never logged.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must be an mqtt:// or mqtts:// URL")
        return v


class WebhookSettings(Strict):
    id: str = Field(
        ...,
        pattern=r"^[a-z0-9_-]{1,32}$",
        title="Webhook id",
        description="Short name of the recipient, shown in the dead-letter list and the audit log, e.g. `police-municipale`.",
    )
    url: str = Field(
        ...,
        title="URL",
        description="Where confirmed alerts are POSTed as JSON (https:// outside a closed network).",
    )
    secret_file: Path = Field(
        ...,
        title="Secret file",
        description="File holding the shared secret that signs each body (HMAC-SHA256, relative to the config file); read at each delivery, never logged.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return v


class OutboundSettings(Strict):
    mqtt: MqttSettings | None = Field(
        None, title="MQTT", description="Broker that receives confirmed alerts (QoS 1). None: no MQTT."
    )
    webhooks: list[WebhookSettings] = Field(
        default_factory=list,
        title="Webhooks",
        description="Partner systems that receive each confirmed alert as a signed POST (docs/integration.md).",
    )
    max_attempts: int = Field(
        8,
        ge=1,
        le=50,
        title="Attempts",
        description="Deliveries tried per destination before the message goes to the dead-letter list, where a supervisor can retry it.",
    )
    backoff_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        title="First retry after (s)",
        description="Wait before the second attempt; each later wait doubles, up to `max_backoff_seconds`.",
    )
    max_backoff_seconds: float = Field(
        900.0,
        gt=0,
        le=86400,
        title="Longest wait (s)",
        description="Cap of the doubling wait between attempts.",
    )

    @model_validator(mode="after")
    def _unique_webhooks(self) -> OutboundSettings:
        _refuse_duplicates("webhook id", [w.id for w in self.webhooks])
        return self


class MetricsSettings(Strict):
    token_file: Path | None = Field(
        None,
        title="Bearer token file",
        description="File holding the token Prometheus sends as `Authorization: Bearer …` to read `/metrics` (relative to the config file). None: `/metrics` is off.",
    )


class ReviewSettings(Strict):
    """The hourly review of the audit log (LG-06): what it flags for the DPO, docs/audit.md, Automatic review."""

    hourly: bool = Field(
        True,
        title="Review every hour",
        description="The process that runs the site's chores (`lanterne run`, or `lanterne ingest` in a city) reviews each full hour of the audit log once it is over, resuming after the last review it recorded. Off: only `lanterne audit review` runs it.",
    )
    time_zone: str = Field(
        "Europe/Paris",
        title="Time zone",
        description="IANA zone of the site's days and shift hours: a day of views is counted from local midnight, as the people working it count it.",
    )
    bulk_exports: int = Field(
        20,
        ge=2,
        le=10_000,
        title="Bulk export (exports)",
        description="One account exporting this many times or more within `bulk_minutes` is flagged (LG-06's own example: 20 clips in 10 minutes).",
    )
    bulk_minutes: int = Field(
        10, ge=1, le=1440, title="Bulk export window (min)", description="The window of `bulk_exports`."
    )
    daily_floor: int = Field(
        50,
        ge=1,
        le=100_000,
        title="Daily views floor",
        description="An account's views (snapshots, clips, recordings, live) and exports in one day are flagged only above this many, whatever its history.",
    )
    daily_factor: float = Field(
        3.0,
        ge=1.0,
        le=100.0,
        title="Daily views factor",
        description="…and above this many times the median of the account's active days among the previous `history_days` (the floor alone while it has fewer than 5 active days).",
    )
    history_days: int = Field(
        28, ge=7, le=365, title="History (days)", description="The days a day of views is compared with."
    )
    search_cameras: int = Field(
        10,
        ge=1,
        le=100_000,
        title="Wide search (cameras)",
        description="An event search covering more cameras than this (no camera filter: the account's whole scope; `*` counts as the whole site, always over)…",
    )
    search_hours: float = Field(
        24.0,
        ge=0,
        le=8784,
        title="Wide search (hours)",
        description="…and a time range at least this long (none given: unbounded) is flagged. 0 flags every wide search, a routine glance at the last hour included.",
    )
    refusals: int = Field(
        5,
        ge=2,
        le=10_000,
        title="Repeated refusals",
        description="This many refusals or more (refused logins, requests refused for role, scope or records, refused removals of privacy protection) for one account within `refusal_minutes` are flagged; failed logins to unknown names count together as account `unknown`.",
    )
    refusal_minutes: int = Field(
        15, ge=1, le=1440, title="Refusals window (min)", description="The window of `refusals`."
    )
    privacy_grace_minutes: int = Field(
        180,
        ge=1,
        le=10_080,
        title="Privacy removal left open (min)",
        description="A removal of privacy protection (`privacy_removed`) with no `privacy_restored` this long after it is flagged: the rendering that needed it has ended or failed without its record.",
    )
    shift_hours: dict[
        Literal["operator", "supervisor", "auditor", "admin", "analyst", "export_officer"], str
    ] = Field(
        default_factory=dict,
        title="Shift hours",
        description='Local working hours per role, `"HH:MM-HH:MM"` (may run past midnight, e.g. `"22:00-06:00"`); a view or export outside them is flagged. A role left out, as every role by default (a supervision centre often works round the clock), is never flagged for its hours.',
    )
    replay_users: int = Field(
        4,
        ge=2,
        le=1000,
        title="Replays by many users",
        description="The same moment of one camera's recording viewed or exported by this many different accounts within `replay_days` is flagged (LG-06: the same range replayed by many users).",
    )
    replay_days: int = Field(
        7, ge=1, le=90, title="Replays window (days)", description="The window of `replay_users`."
    )

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Europe/Paris") from None
        return v

    @field_validator("shift_hours")
    @classmethod
    def _shifts(cls, v: dict[str, str]) -> dict[str, str]:
        for role, hours in v.items():
            if shift_window(hours) is None:
                raise ValueError(f"{role}: {hours!r} is not a shift; write 'HH:MM-HH:MM', e.g. '06:00-22:00'")
        return v


def shift_window(text: str) -> tuple[int, int] | None:
    """`"HH:MM-HH:MM"` as (start, end) minutes after midnight; None when it is not one, or empty.

    >>> shift_window("22:00-06:00"), shift_window("6h-22h")
    ((1320, 360), None)
    """
    parts = text.split("-")
    if len(parts) != 2:
        return None
    minutes = []
    for part in parts:
        hh, _, mm = part.strip().partition(":")
        if not (len(hh) == 2 and len(mm) == 2 and hh.isdigit() and mm.isdigit()):
            return None
        if int(hh) > 23 or int(mm) > 59:
            return None
        minutes.append(int(hh) * 60 + int(mm))
    return (minutes[0], minutes[1]) if minutes[0] != minutes[1] else None


class Config(Strict):
    mode: Mode = Field(
        Mode.STATISTICS,
        title="Mode",
        description="`alerts` raises events for operators; `statistics` keeps only counts per zone and time bucket and never writes a frame.",
    )
    site: str = Field("lanterne", max_length=200, title="Site name", description="Name of the deployment.")
    models_dir: Path | None = Field(
        None,
        title="Models directory",
        description="Where model files are looked up (checked by sha256). Default: `../shared/models` when present, else the user cache, filled once from each model's public origin.",
    )
    statistics_bucket_seconds: int = Field(
        60,
        ge=60,
        le=3600,
        title="Statistics bucket (s)",
        description="Width of the time buckets of statistics mode (at least one minute, so no bucket describes an individual).",
    )
    detector: DetectorSettings = Field(
        default_factory=DetectorSettings, title="Detector", description="Object detector settings."
    )
    motion: MotionSettings = Field(
        default_factory=MotionSettings,
        title="Motion",
        description="Motion gating, and the optical-flow method of crowd movement.",
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings, title="Store", description="Where events and evidence go."
    )
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings,
        title="Retention",
        description="How long evidence and alerts are kept.",
    )
    recording: RecordingSettings = Field(
        default_factory=RecordingSettings,
        title="Recording",
        description="The cameras' own streams, kept encrypted in short hash-chained segments for at most 30 days.",
    )
    audit: AuditSettings = Field(
        default_factory=AuditSettings,
        title="Audit log",
        description="Retention and signing of the audit log.",
    )
    legal_end_date: date | None = Field(
        None,
        title="Legal end date",
        description="Site-wide end of the legal basis for algorithmic alerts (e.g. the end of the experimental law). After it, every camera falls back to statistics; no authorisation may end later.",
    )
    suspension: SuspensionSettings = Field(
        default_factory=SuspensionSettings,
        title="Self-suspension",
        description="When a detector switches itself off on a camera pending review.",
    )
    public: PublicNotice = Field(
        default_factory=PublicNotice,
        title="Public notice",
        description="What the public transparency page says about the controller, purposes and rights.",
    )
    console: ConsoleSettings = Field(
        default_factory=ConsoleSettings,
        title="Console",
        description="Operator console: map base layer, sessions, login throttling.",
    )
    observatory: ObservatorySettings = Field(
        default_factory=ObservatorySettings,
        title="Observatory",
        description="Incident and open-data observatory: its store, small-cell threshold and boundary layers.",
    )
    outbound: OutboundSettings = Field(
        default_factory=OutboundSettings,
        title="Outbound",
        description="Where human-confirmed alerts are sent (MQTT, signed webhooks); never an unconfirmed alert, never a picture.",
    )
    metrics: MetricsSettings = Field(
        default_factory=MetricsSettings,
        title="Metrics",
        description="Prometheus `/metrics` on the console's server.",
    )
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings,
        title="Cluster",
        description="City scale: cameras spread over `lanterne worker` processes through NATS JetStream (docs/scaling.md).",
    )
    live: LiveSettings = Field(
        default_factory=LiveSettings,
        title="Live wall",
        description="Watching cameras live, anonymised by default (docs/live.md).",
    )
    review: ReviewSettings = Field(
        default_factory=ReviewSettings,
        title="Log review",
        description="The automatic review of the audit log for the DPO (LG-06): bulk exports, unusual volumes, wide searches, refusals, open removals of privacy protection, views without a valid habilitation or outside shift hours, the same footage replayed by many (docs/audit.md, Automatic review).",
    )
    oidc: OidcSettings | None = Field(
        None,
        title="City sign-in (OpenID Connect)",
        description="Sign agents in with the city's directory (Active Directory / Azure AD / Keycloak) beside local accounts; roles and camera scopes mapped from its groups (docs/console.md, City sign-in). None: local accounts only.",
    )
    cameras: list[Camera] = Field(..., min_length=1, title="Cameras", description="The cameras analysed.")

    @model_validator(mode="after")
    def _unique_cameras(self) -> Config:
        _refuse_duplicates("camera id", [c.id for c in self.cameras])
        return self

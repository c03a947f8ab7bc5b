"""Event precision and recall, per event type, through the full pipeline (YOLOX-nano + ByteTrack
+ rules at 5 fps).

(a) Real footage with MOT ground truth: the pipeline's events against the events the same rules
    raise on the annotated boxes (`lanterne.video.evaluation`): PETS09-S2L1 (`vtest.avi`) with the zones
    of `tests/support/pipeline.py`, and TUD-Stadtmitte with a crowd-density and an intrusion zone.
(b) Semi-synthetic scenes for abandoned_object and person_down, composited from real footage by
    `tests/support/scenes.py` (several backgrounds, walkers, objects, positions, speeds): a positive counts
    as a TP when exactly its event is raised with a start within the tolerance and an overlapping
    region; any other event of that type is an FP; a positive without a matching event is an FN.

Person-detection precision and recall are in `benchmarks/detector_accuracy.py`.

    .venv/bin/python benchmarks/event_accuracy.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.pipeline import (  # noqa: E402  # noqa: E402
    ABANDONED,
    ABANDONED_SECONDS,
    BAG_TOLERANCE,
    DOWN,
    DOWN_SECONDS,
    DOWN_TOLERANCE,
    PETS,
    run,
    run_pipeline,
)
from tests.support.scenes import BagScene, FallScene, Scene, abandoned_scene, person_down_scene  # noqa: E402
from tests.support.video import VIDEO  # noqa: E402

from lanterne.core.types import Event  # noqa: E402
from lanterne.video.evaluation import Score, load_mot, match_events, reference_events  # noqa: E402

TUD = {
    "mode": "alerts",
    "cameras": [
        {
            "id": "tud",
            "source": "TUD-Stadtmitte.mp4",
            "location": {"lat": 49.87, "lon": 8.65},
            "fps": 5,
            "zones": [
                {
                    # The pavement in front of the shops, where people walk.
                    "id": "pavement",
                    "polygon": [[0.0, 0.45], [1.0, 0.45], [1.0, 0.75], [0.0, 0.75]],
                    "events": {"crowd_density": {"max_people": 4, "min_seconds": 1}},
                },
                {
                    # The right third, as if it were a closed entrance.
                    "id": "entrance",
                    "polygon": [[0.66, 0.40], [1.0, 0.40], [1.0, 0.80], [0.66, 0.80]],
                    "events": {"zone_intrusion": {"min_seconds": 1}},
                },
            ],
        }
    ],
}


BAG_POSITIVES = [
    BagScene(bag="hood-b"),
    BagScene(bag="hood-c"),
    BagScene(bag="hood-a", bag_scale=0.8),
    BagScene(bag="hood-b", person="b"),
    BagScene(bag="hood-c", person="c", x=520),
    BagScene(bag="hood-b", x=400, speed=50),
    BagScene(bag="hood-d", bg="room", x=420),
    BagScene(bag="hood-b", bg="room", x=360, person="b"),
    BagScene(bag="hood-c", bg="campus", height=160, x=500),
]
BAG_NEGATIVES = [
    BagScene(kind="stays", bag="hood-b"),
    BagScene(kind="stays", bag="hood-c", person="b"),
    BagScene(kind="stays", bag="hood-d", bg="room", x=420),
    BagScene(kind="lying", bag="hood-b"),
    BagScene(kind="lying", bag="hood-c", person="c", x=520),
    BagScene(kind="lying", bag="hood-d", bg="room", x=420),
    BagScene(kind="carried", bag="hood-b"),
    BagScene(kind="carried", bag="hood-c", person="b", speed=50),
    BagScene(kind="carried", bag="hood-b", bg="campus", height=160),
]
FALL_POSITIVES = [
    FallScene(),
    FallScene(person="b"),
    FallScene(person="c", direction=-1, x=380),
    FallScene(fall_time=0.5, x=260),
    FallScene(fall_time=1.2, person="b", x=420),
    FallScene(bg="room", height=200, x=300),
    FallScene(bg="room", height=200, person="c", direction=-1, x=420),
    FallScene(bg="campus", height=160, x=380),
    FallScene(bg="campus", height=160, person="b", direction=-1, x=460),
]
FALL_NEGATIVES = [
    FallScene(kind="lying"),
    FallScene(kind="lying", person="b", bg="room", height=200),
    FallScene(kind="lying", person="c", bg="campus", height=160, x=400),
    FallScene(kind="slow"),
    FallScene(kind="slow", person="b", bg="room", height=200, direction=-1, x=420),
    FallScene(kind="slow", person="c", bg="campus", height=160, x=400),
    FallScene(kind="sit"),
    FallScene(kind="sit", person="b", bg="room", height=200),
    FallScene(kind="sit", person="c", bg="campus", height=160, x=400),
]


def real(
    name: str, video: str, cfg_data: dict, gt_name: str, size: tuple[int, int], fps: float
) -> dict[str, Score]:
    events, times, cfg = run_pipeline(VIDEO / video, cfg_data)
    ref = reference_events(load_mot(VIDEO / gt_name, size, fps), cfg.cameras[0], times)
    return match_events(events, ref, slack=1.5)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def score_scene(scene: Scene, events: list[Event], etype: str, tolerance: float) -> tuple[int, int, int]:
    found = [e for e in events if str(e.type) == etype]
    tp = 0
    for want in scene.expected:
        hit = next(
            (e for e in found if abs(e.start - want.start) <= tolerance and _overlaps(e.region, want.region)),
            None,
        )
        if hit is not None:
            tp += 1
            found.remove(hit)
    return tp, len(found), len(scene.expected) - tp


def synthetic(tmp: Path, verbose: bool) -> dict[str, Score]:
    out: dict[str, Score] = {}
    plans = [
        (
            "abandoned_object",
            ABANDONED,
            BAG_TOLERANCE,
            [(s, True) for s in BAG_POSITIVES] + [(s, False) for s in BAG_NEGATIVES],
        ),
        (
            "person_down",
            DOWN,
            DOWN_TOLERANCE,
            [(s, True) for s in FALL_POSITIVES] + [(s, False) for s in FALL_NEGATIVES],
        ),
    ]
    for etype, events_cfg, tol, items in plans:
        total = [0, 0, 0]
        for spec, _positive in items:
            if etype == "abandoned_object":
                scene = abandoned_scene(tmp, spec, ABANDONED_SECONDS)  # type: ignore[arg-type]
            else:
                scene = person_down_scene(tmp, spec, DOWN_SECONDS)  # type: ignore[arg-type]
            events = run(scene, events_cfg)
            tp, fp, fn = score_scene(scene, events, etype, tol)
            total = [total[0] + tp, total[1] + fp, total[2] + fn]
            if verbose:
                got = [round(e.start, 1) for e in events if str(e.type) == etype]
                want = [round(x.start, 1) for x in scene.expected]
                print(f"  {scene.name:48s} want {want} got {got} -> tp {tp} fp {fp} fn {fn}", flush=True)
            scene.path.unlink()
        out[etype] = Score(*total)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per synthetic scene")
    args = ap.parse_args()
    started = time.perf_counter()
    rows: list[tuple[str, str, Score]] = []
    for k, s in real("pets", "vtest.avi", PETS, "vtest.PETS09-S2L1.gt.txt", (768, 576), 10).items():
        rows.append(("PETS09-S2L1 (real, MOT GT)", k, s))
    for k, s in real("tud", "TUD-Stadtmitte.mp4", TUD, "TUD-Stadtmitte.gt.txt", (640, 480), 25).items():
        rows.append(("TUD-Stadtmitte (real, MOT GT)", k, s))
    with tempfile.TemporaryDirectory() as tmp:
        n = {
            "abandoned_object": (len(BAG_POSITIVES), len(BAG_NEGATIVES)),
            "person_down": (len(FALL_POSITIVES), len(FALL_NEGATIVES)),
        }
        for k, s in synthetic(Path(tmp), args.verbose).items():
            rows.append((f"semi-synthetic ({n[k][0]} pos, {n[k][1]} neg)", k, s))
    print("| source | event | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|---|")
    for src, k, s in rows:
        print(f"| {src} | {k} | {s.tp} | {s.fp} | {s.fn} | {s.precision:.2f} | {s.recall:.2f} |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

"""Event precision and recall, per event type, through the full pipeline (YOLOX-nano + ByteTrack
+ rules at 5 fps).

(a) Real footage with MOT ground truth: the pipeline's events against the events the same rules
    raise on the annotated boxes (`lanterne.video.evaluation`): PETS09-S2L1 (`vtest.avi`) with the zones
    of `tests/support/pipeline.py`, and TUD-Stadtmitte with a crowd-density and an intrusion zone.
(b) Semi-synthetic scenes for abandoned_object and person_down, composited from real footage by
    `tests/support/scenes.py` (24 positives and 24 hard negatives per type, the sets
    `tests/video/test_scenes_synthetic.py` asserts on): a positive counts as a TP when exactly its
    event is raised with a start within the tolerance and an overlapping region; any other event
    of that type is an FP; a positive without a matching event is an FN.
(c) What the second look (`lanterne.video.detectors.second_look`) costs where it finds nothing:
    analyser CPU on PETS09-S2L1 (`vtest.avi`, a busy scene where tracks are often lost behind
    other people) with a person_down and an abandoned_object zone over the whole picture, with
    and without it, beside the events it raised there.

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

from tests.support.pipeline import (  # noqa: E402
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
from tests.support.scenes import (  # noqa: E402
    BAG_NEGATIVES,
    BAG_POSITIVES,
    FALL_NEGATIVES,
    FALL_POSITIVES,
    abandoned_scene,
    person_down_scene,
    score_scene,
)
from tests.support.video import VIDEO  # noqa: E402

from lanterne.config import parse_config  # noqa: E402
from lanterne.video.analyser import CameraAnalyser  # noqa: E402
from lanterne.video.capture.source import FileSource  # noqa: E402
from lanterne.video.detectors import create_detector  # noqa: E402
from lanterne.video.detectors.second_look import SecondLook  # noqa: E402
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


def real(
    name: str, video: str, cfg_data: dict, gt_name: str, size: tuple[int, int], fps: float
) -> dict[str, Score]:
    events, times, cfg = run_pipeline(VIDEO / video, cfg_data)
    ref = reference_events(load_mot(VIDEO / gt_name, size, fps), cfg.cameras[0], times)
    return match_events(events, ref, slack=1.5)


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


def second_look_cost(repeats: int = 2) -> None:
    """Analyser CPU on vtest.avi with and without the second look, alternated `repeats` times
    (the lowest of each is printed: other processes only ever add time)."""
    data = {**PETS, "cameras": [dict(PETS["cameras"][0])]}
    cam_data = data["cameras"][0]
    cam_data["zones"] = [
        *cam_data["zones"],
        {
            "id": "all",
            "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
            "events": {**DOWN, **ABANDONED},
        },
    ]
    cfg = parse_config(data)
    cam = cfg.cameras[0]
    frames = list(FileSource(cam.id, str(VIDEO / "vtest.avi"), fps=cam.fps).frames())
    best: dict[bool, float] = {}
    looks = 0
    raised = 0
    for _ in range(repeats):
        for on in (False, True):
            analyser = CameraAnalyser(cam, cfg, create_detector(cfg.detector, cfg.models_dir), config_hash="")
            if not on:
                analyser.second_look = None
            started = time.process_time()
            events = [e for f in frames for e in analyser.process(f) if e.ongoing]
            spent = time.process_time() - started
            best[on] = min(best.get(on, spent), spent)
            if on and analyser.second_look is not None:
                looks = analyser.second_look.calls
                raised = sum(str(e.type) in ("person_down", "abandoned_object") for e in events)
    print(
        f"\nsecond look on vtest.avi ({len(frames)} frames at 5 fps, person_down + abandoned_object "
        f"over the whole picture): CPU {best[False]:.1f} s without, {best[True]:.1f} s with "
        f"(x{best[True] / best[False]:.2f}); {looks} second looks "
        f"({looks / len(frames):.2f} per frame), {raised} person_down/abandoned_object events raised"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per synthetic scene")
    ap.add_argument(
        "--without-second-look",
        action="store_true",
        help="the semi-synthetic sets only, with the second look switched off (the figures before it)",
    )
    args = ap.parse_args()
    if args.without_second_look:
        SecondLook.for_rules = classmethod(lambda cls, detector, rules: None)  # type: ignore[method-assign,assignment]
        with tempfile.TemporaryDirectory() as tmp:
            for k, s in synthetic(Path(tmp), args.verbose).items():
                print(
                    f"| semi-synthetic, no second look | {k} | {s.tp} | {s.fp} | {s.fn} | {s.precision:.2f} | {s.recall:.2f} |"
                )
        return
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
    second_look_cost()
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

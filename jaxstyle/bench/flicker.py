"""``python -m jaxstyle.bench --flicker``: the temporal filter's settings compared.

``--flicker``: clips of real photos × every painting of ``styles/`` painted once per work size by
``arbitrary`` (640×480 frames, as the camera's), then every :class:`TemporalFilter` variant replayed
on the same paintings: flicker ratio, ghosting, pan drag and blur (see :func:`clip_metrics`). The
default is chosen (:func:`choose`) on the clips of ``CHOICE_PHOTOS`` at the default work size and
reported on ``REPORT_PHOTOS`` (unseen by the choice) and at the other sizes; one style vector per
clip against one per frame at strength 0.7 alongside.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import load, process, tables, video_common
from jaxstyle.bench.tables import fmt
from jaxstyle.bench.video_common import CAMERA_SIZE, CHOICE_PHOTOS, CHOICE_PX, REPORT_PHOTOS, still_frames

MOVING = 0.1  # input change (0–1, a pixel's channels' mean) above which a pixel is "moving" (ghosting)
STRENGTH = 0.7  # one style vector per clip against one per frame, at this strength
# What the choice requires of a setting over the choice pairs (see choose()): strokes about as sharp
# as painted (blur ratio, median and worst pair), nothing dragged behind moving edges (ghost share,
# worst pair), and moving flat regions not held back much (drag share, worst pair; a softer artefact).
BLUR_MEDIAN_FLOOR = 0.95
BLUR_WORST_FLOOR = 0.90
GHOST_SHARE_CEILING = 0.10
DRAG_SHARE_CEILING = 0.15
NOISY_CAMERA = 6.0  # sensor noise (0–255 steps) of the noise check: twice the clips' (a dim room)


def variants() -> list[dict]:
    """Every TemporalFilter setting the study compares: off; the peer's unmasked blend; the masked blend."""
    found = [{"name": "off", "smooth": 0.0, "threshold": None, "masked": False}]
    found += [{"name": f"unmasked {s:g}", "smooth": s, "threshold": None, "masked": False} for s in (0.3, 0.5, 0.7)]
    found += [{"name": f"masked {s:g} / {t:g}", "smooth": s, "threshold": t, "masked": True}
              for s in (0.3, 0.5, 0.7, 0.85) for t in (0.03, 0.06, 0.1)]  # fmt: skip
    return found


# --- the study's measures ---------------------------------------------------------------------------


class _Recorder:
    """A FramePainter's ``temporal`` that keeps what the filter would get (the frame at the work
    size and its painting, unclipped) and changes nothing: the painting runs once, the filters replay."""

    def __init__(self) -> None:
        self.inputs: list = []
        self.painted: list = []

    def __call__(self, frame, painted):
        self.inputs.append(frame)
        self.painted.append(painted.copy())
        return painted


def paint_clip(network, work_px: int, frames: Sequence) -> tuple[list, list]:
    """Each frame at the work size (uint8) and its painting (float, unclipped), as FramePainter makes them."""
    from jaxstyle.video.frames import FramePainter

    recorder = _Recorder()
    frame_painter = FramePainter(network, work_px, recorder)  # type: ignore[arg-type]
    for frame in frames:
        frame_painter.paint(frame)
    return recorder.inputs, recorder.painted


def _gradient(image) -> float:
    """Mean gradient magnitude of an (H, W, 3) image in [0, 1] (its channels' mean; forward differences)."""
    import numpy as np

    gray = image.mean(axis=-1)
    dx, dy = np.diff(gray, axis=1)[:-1], np.diff(gray, axis=0)[:, :-1]
    return float(np.sqrt(dx * dx + dy * dy).mean())


def prepare_clip(inputs: Sequence, painted: Sequence, still: Sequence[bool]) -> dict:
    """What every filter's metrics of one clip need and does not change: the paintings clipped to
    [0, 1], the moving pixels of each frame, and the unfiltered paintings' own figures."""
    import numpy as np

    clipped = [np.clip(p, 0.0, 1.0).astype(np.float32) for p in painted]
    moving, lag, pan_lag = [None], 0.0, []
    for index in range(1, len(inputs)):
        change = np.abs(inputs[index].astype(np.int16) - inputs[index - 1].astype(np.int16)).mean(axis=-1) / 255.0
        moving.append(change > MOVING)
        step = np.abs(clipped[index] - clipped[index - 1]).mean(axis=-1)
        lag += float(step[moving[-1]].sum())
        if not still[index]:
            pan_lag.append(float(step.mean()))
    moving_pixels = sum(int(m.sum()) for m in moving[1:])
    return {
        "inputs": inputs, "painted": painted, "clipped": clipped, "still": list(still), "moving": moving,
        "moving_pixels": moving_pixels, "lag": lag / moving_pixels if moving_pixels else None,
        "pan_lag": statistics.fmean(pan_lag) if pan_lag else None,
        "gradient": sum(_gradient(clipped[i]) for i in range(len(clipped)) if still[i]),
    }  # fmt: skip


def clip_metrics(clip: dict, smooth: float, threshold: float | None, masked: bool) -> dict:
    """One TemporalFilter setting replayed on a painted clip (:func:`prepare_clip`), at the work size:

    - ``flicker``: the FlickerMeter's ratio over the whole clip (output change ÷ input change);
      ``still_flicker`` the same over the still part alone (where flicker is all there is to see);
    - ``ghosting``: mean |filtered − unfiltered| over the pixels whose input changed by more than
      0.1 since the previous frame (what a moving edge drags behind; 0 unfiltered); ``ghost_share``
      that ÷ the unfiltered painting's own change there (1: the previous frame shown instead);
    - ``pan_drag``: mean |filtered − unfiltered| over every pixel of the panning frames (flat
      regions that move slower than the threshold too); ``drag_share`` ÷ the painting's change there;
    - ``blur``: mean gradient magnitude of the filtered output ÷ the unfiltered one's, over the still
      part (below 1: the blend softened the strokes).
    """
    import numpy as np

    from jaxstyle.video.flicker import DEFAULT_THRESHOLD, FlickerMeter, TemporalFilter, frame_change

    temporal = TemporalFilter(smooth, threshold if threshold is not None else DEFAULT_THRESHOLD, masked)
    meter = FlickerMeter()
    still_in = still_out = ghost = gradient = 0.0
    drags = []
    previous = None
    for index, (frame, painted) in enumerate(zip(clip["inputs"], clip["painted"], strict=True)):
        out = np.clip(temporal(frame, painted), 0.0, 1.0)
        out8 = (out * 255.0 + 0.5).astype(np.uint8)
        meter.add(frame, out8)
        if index:
            away = np.abs(out - clip["clipped"][index]).mean(axis=-1)
            ghost += float(away[clip["moving"][index]].sum())
            if clip["still"][index]:
                still_in += frame_change(clip["inputs"][index - 1], frame)
                still_out += frame_change(previous, out8)
                gradient += _gradient(out)
            else:
                drags.append(float(away.mean()))
        elif clip["still"][index]:
            gradient += _gradient(out)
        previous = out8
    ghosting = ghost / clip["moving_pixels"] if clip["moving_pixels"] else None
    pan_drag = statistics.fmean(drags) if drags else None
    return {
        "flicker": meter.ratio,
        "still_flicker": still_out / still_in if still_in else None,
        "ghosting": ghosting,
        "ghost_share": ghosting / clip["lag"] if ghosting is not None and clip["lag"] else None,
        "pan_drag": pan_drag,
        "drag_share": pan_drag / clip["pan_lag"] if pan_drag is not None and clip["pan_lag"] else None,
        "blur": gradient / clip["gradient"] if clip["gradient"] else None,
    }


def flicker_worker(spec: dict) -> dict:
    """Clips of each (photo, painting) painted once by ``arbitrary`` at the work size, every filter
    setting replayed on them; with ``strength``, one style vector per clip against one per frame."""
    from jaxstyle import devices, images, transfer
    from jaxstyle.instant.builtin import ArbitraryPainter
    from jaxstyle.video.clips import CLIP_NOISE, clip_frames
    from jaxstyle.video.frames import styled_network, work_shape

    transfer.enable_compilation_cache(spec["cache_dir"])
    painter = ArbitraryPainter()
    width, height = CAMERA_SIZE
    work_px, count = spec["work_px"], spec["frames"]
    names = set(spec.get("variants") or [v["name"] for v in variants()])
    noise = spec.get("noise", CLIP_NOISE)
    rows = []
    for photo_file, painting_file in spec["pairs"]:
        photo, painting = images.open_image(Path(photo_file)), images.open_image(Path(painting_file))
        frames = clip_frames(photo, count, width, height, noise=noise)
        still = still_frames(photo, count, width, height)
        network = styled_network(painter, [painting])
        started = time.perf_counter()
        clip = prepare_clip(*paint_clip(network, work_px, frames), still)
        row: dict[str, Any] = {
            "photo": Path(photo_file).stem, "painting": Path(painting_file).stem,
            "paint_ms": 1000 * (time.perf_counter() - started) / count,
            "still_frames": sum(still), "moving_pixels": clip["moving_pixels"],
            "metrics": {v["name"]: clip_metrics(clip, v["smooth"], v["threshold"], v["masked"])
                        for v in variants() if v["name"] in names},
        }  # fmt: skip
        if spec.get("strength"):
            row["strength"] = _strength_study(painter, painting, frames, still, work_px)
        rows.append(row)
    return {
        "rows": rows,
        "work_shape": list(reversed(work_shape(height, width, work_px))),
        "frames": count,
        "noise": noise,
        "frame_size": [width, height],
        "device": devices.description(),
        "cores": process.cores(),
    }


def _strength_study(painter, painting, frames: Sequence, still: Sequence[bool], work_px: int) -> dict:
    """At strength 0.7: the stream's first frame's style vector for the whole clip (as LivePainter
    does), against a styled network rebuilt with each frame's own (its vector worked out per frame)."""
    from PIL import Image

    from jaxstyle.video.frames import styled_network

    out = {}
    started = time.perf_counter()
    once = styled_network(painter, [painting], strength=STRENGTH, photo=Image.fromarray(frames[0]))
    clip = prepare_clip(*paint_clip(once, work_px, frames), still)
    out["per_clip"] = {**clip_metrics(clip, 0.0, None, False), "ms_per_frame": 1000 * (time.perf_counter() - started)
                       / len(frames)}  # fmt: skip
    inputs, painted = [], []
    started = time.perf_counter()
    for frame in frames:
        network = styled_network(painter, [painting], strength=STRENGTH, photo=Image.fromarray(frame))
        small, one = paint_clip(network, work_px, [frame])
        inputs += small
        painted += one
    per_frame_ms = 1000 * (time.perf_counter() - started) / len(frames)
    out["per_frame"] = {**clip_metrics(prepare_clip(inputs, painted, still), 0.0, None, False),
                        "ms_per_frame": per_frame_ms}  # fmt: skip
    return out


# --- the orchestrator --------------------------------------------------------------------------------

_METRICS = ("still_flicker", "flicker", "ghosting", "ghost_share", "pan_drag", "drag_share", "blur")


def summarize(rows: Sequence[dict]) -> dict:
    """Per setting and metric, the median and the worst over the pairs (worst: the lowest blur
    ratio, the highest of the others)."""
    found: dict[str, dict] = {}
    for name in rows[0]["metrics"]:
        found[name] = {}
        for metric in _METRICS:
            values = [row["metrics"][name][metric] for row in rows if row["metrics"][name][metric] is not None]
            if values:
                worst = min(values) if metric == "blur" else max(values)
                found[name][metric] = {"median": statistics.median(values), "worst": worst, "pairs": len(values)}
    return found


def choose(summary: dict) -> str:
    """The setting that lowers the still part's flicker most (median over the pairs) among those
    that keep the strokes sharp (blur ratio: median ≥ ``BLUR_MEDIAN_FLOOR``, worst pair ≥
    ``BLUR_WORST_FLOOR``) and drag nothing behind what moves (worst pair: ghost share ≤
    ``GHOST_SHARE_CEILING``, drag share ≤ ``DRAG_SHARE_CEILING``); "off" when none does."""

    def allowed(metrics: dict) -> bool:
        return (
            metrics["blur"]["median"] >= BLUR_MEDIAN_FLOOR
            and metrics["blur"]["worst"] >= BLUR_WORST_FLOOR
            and metrics["ghost_share"]["worst"] <= GHOST_SHARE_CEILING
            and metrics["drag_share"]["worst"] <= DRAG_SHARE_CEILING
        )

    names = [name for name, metrics in summary.items() if name != "off" and allowed(metrics)]
    return min(names, key=lambda name: summary[name]["still_flicker"]["median"]) if names else "off"


def run(args: Any, plan: None, log: Callable[[str], None]) -> dict:
    """``--flicker`` (arguments checked by :func:`video_common.check`): every setting at the default
    work size on every pair, the choice, then the chosen setting beside off and the unmasked blend
    at the other sizes."""
    sizes = video_common.sizes(args)
    choice_px = CHOICE_PX if CHOICE_PX in sizes else sizes[0]
    paintings = video_common.paintings(args)
    photos = {stem: args.data / "content" / f"{stem}.jpg" for stem in (*CHOICE_PHOTOS, *REPORT_PHOTOS)}
    gate = load.Gate(args.max_load, args.load_wait, log)
    report: dict[str, Any] = {
        "kind": "video-flicker",
        **video_common.header(),
        "settings": {"frames": args.frames, "frame_size": list(CAMERA_SIZE), "model": "arbitrary",
                     "choice_photos": list(CHOICE_PHOTOS), "report_photos": list(REPORT_PHOTOS),
                     "paintings": [p.stem for p in paintings], "choice_px": choice_px, "sizes": sizes,
                     "moving_change": MOVING, "blur_median_floor": BLUR_MEDIAN_FLOOR,
                     "blur_worst_floor": BLUR_WORST_FLOOR, "ghost_share_ceiling": GHOST_SHARE_CEILING,
                     "drag_share_ceiling": DRAG_SHARE_CEILING, "noisy_camera": NOISY_CAMERA,
                     "strength": STRENGTH, "variants": variants()},
        "sizes": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="jaxstyle-bench-flicker-") as tmp:

        def study(size_px: int, names: list[str] | None, strength: bool, noise: float | None = None) -> dict:
            runs = []
            for stem, photo in photos.items():
                if noise is not None and stem not in REPORT_PHOTOS:
                    continue
                log(f"flicker at {size_px} px: {stem} × {len(paintings)} paintings{_noise_note(noise)}…")
                spec = {"kind": "video_flicker", "work_px": size_px, "frames": args.frames, "variants": names,
                        "strength": strength, "pairs": [[str(photo), str(p)] for p in paintings],
                        "cache_dir": str(Path(tmp) / f"xla-{size_px}")}  # fmt: skip
                if noise is not None:
                    spec["noise"] = noise
                run = gate.measure(spec, 3600)
                for row in run["rows"]:
                    row["set"] = "choice" if stem in CHOICE_PHOTOS else "report"
                runs.append(run)
            rows = [row for run in runs for row in run["rows"]]
            entry = {"work_shape": runs[0]["work_shape"], "noise": runs[0]["noise"], "runs": runs, "rows": rows}
            for which in ("choice", "report"):
                chosen_rows = [r for r in rows if r["set"] == which]
                if chosen_rows:
                    entry[which] = summarize(chosen_rows)
            if strength:
                entry["strength"] = _strength_summary(rows)
            return entry

        report["sizes"][str(choice_px)] = study(choice_px, None, True)
        chosen = choose(report["sizes"][str(choice_px)]["choice"])
        report["chosen"] = next(v for v in variants() if v["name"] == chosen)
        log(f"chosen on {', '.join(CHOICE_PHOTOS)} at {choice_px} px: {chosen}")
        smooth = report["chosen"]["smooth"] or 0.5
        checked = list(
            dict.fromkeys(["off", chosen, f"unmasked {min((0.3, 0.5, 0.7), key=lambda s: abs(s - smooth)):g}"])
        )
        for size_px in sizes:
            if size_px != choice_px:
                report["sizes"][str(size_px)] = study(size_px, checked, False)
        # The threshold is a change of the input: against a noisier camera, the same settings.
        chosen_smooth = report["chosen"]["smooth"] or 0.5
        noisy = ["off", chosen, *(f"masked {chosen_smooth:g} / {t:g}" for t in (0.03, 0.06, 0.1))]
        if any(v["name"] == noisy[-1] for v in variants()):
            report["noise_check"] = study(choice_px, list(dict.fromkeys(noisy)), False, NOISY_CAMERA)
    return report


def _noise_note(noise: float | None) -> str:
    return "" if noise is None else f", sensor noise {noise:g}"


def _strength_summary(rows: Sequence[dict]) -> dict:
    found = {}
    for way in ("per_clip", "per_frame"):
        for metric in ("flicker", "still_flicker", "ms_per_frame"):
            values = [row["strength"][way][metric] for row in rows if row["strength"][way][metric] is not None]
            found.setdefault(way, {})[metric] = {"median": statistics.median(values), "worst": max(values)}
    found["per_frame_lower_still_flicker"] = sum(
        row["strength"]["per_frame"]["still_flicker"] < row["strength"]["per_clip"]["still_flicker"] for row in rows
    )
    found["pairs"] = len(rows)
    return found


def _cell(summary: dict, metric: str, spec: str = ".2f") -> str:
    entry = summary.get(metric)
    return "—" if not entry else f"{entry['median']:{spec}} ({entry['worst']:{spec}})"


def format_flicker(report: dict) -> str:
    settings, chosen = report["settings"], report["chosen"]["name"]
    lines = [
        f"Flicker study on {report['machine']['processor']} ({report['cores']} cores); {load.load_line(report)}",
        f"Clips: {settings['frames']} frames of {tables.shape(settings['frame_size'])} (pan, still, "
        f"pan back; sensor noise), painted by arbitrary in {len(settings['paintings'])} paintings. Each cell: median "
        "(worst) over the pairs. still flicker: output change ÷ input change over the still part; flicker: the same "
        "over the whole clip (FlickerMeter); ghost: |filtered − unfiltered| where the input moved by > 0.1, ÷ the "
        "painting's own change there; drag: the same over every pixel of the panning frames; blur: gradient "
        "magnitude filtered ÷ unfiltered over the still part.",
    ]
    sections = [(size, entry, "") for size, entry in report["sizes"].items()]
    if report.get("noise_check"):
        base_noise = report["sizes"][str(settings["choice_px"])]["noise"]
        note = f"sensor noise {report['noise_check']['noise']:g} instead of {base_noise:g}, "
        sections.append((str(settings["choice_px"]), report["noise_check"], note))
    for size, entry, note in sections:
        for which, photos in (("choice", settings["choice_photos"]), ("report", settings["report_photos"])):
            if which not in entry:
                continue
            role = "the default is chosen here" if which == "choice" and int(size) == settings["choice_px"] else (
                "unseen by the choice" if which == "report" else "checked")  # fmt: skip
            lines += [
                f"\n{size} px (painted at {tables.shape(entry['work_shape'])}), {note}clips of "
                f"{', '.join(photos)} ({role}):",
                "| setting | still flicker | flicker | ghost share | drag share | blur |", "|---|---|---|---|---|---|",
            ]  # fmt: skip
            for name, metrics in entry[which].items():
                mark = " **(chosen)**" if name == chosen else ""
                lines.append(f"| {name}{mark} | {_cell(metrics, 'still_flicker')} | {_cell(metrics, 'flicker')} | "
                             f"{_cell(metrics, 'ghost_share', '.3f')} | {_cell(metrics, 'drag_share', '.3f')} | "
                             f"{_cell(metrics, 'blur', '.3f')} |")  # fmt: skip
        if "strength" in entry:
            strength = entry["strength"]
            once, each = strength["per_clip"], strength["per_frame"]
            lines.append(
                f"\nStrength {STRENGTH} at {size} px, filter off, all {strength['pairs']} pairs: one style vector per "
                f"clip (the first frame's) still flicker {_cell(once, 'still_flicker')}, flicker "
                f"{_cell(once, 'flicker')}, {once['ms_per_frame']['median']:.0f} ms per frame; one per frame: still "
                f"flicker {_cell(each, 'still_flicker')}, flicker {_cell(each, 'flicker')}, "
                f"{each['ms_per_frame']['median']:.0f} ms per frame; per frame flickers less on "
                f"{strength['per_frame_lower_still_flicker']} of {strength['pairs']} pairs."
            )
    lines.append(f"\nChosen: {chosen} (smooth {report['chosen']['smooth']:g}, threshold "
                 f"{fmt(report['chosen']['threshold'], 'g')}, masked {report['chosen']['masked']}): the lowest median "
                 f"still flicker on the choice clips at {settings['choice_px']} px among those with blur ≥ "
                 f"{BLUR_MEDIAN_FLOOR} (median) and ≥ {BLUR_WORST_FLOOR} (worst pair), ghost share ≤ "
                 f"{GHOST_SHARE_CEILING} and drag share ≤ {DRAG_SHARE_CEILING} (worst pair).")  # fmt: skip
    return tables.spaced(lines)

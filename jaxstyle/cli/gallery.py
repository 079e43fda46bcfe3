"""``python -m jaxstyle gallery list|show ID|export [--run ID] OUT|import ZIP|delete ID``: the gallery from a shell.

For scripting and backups: plain text by default, ``--json`` for ``list`` and ``show``. Every
command takes ``--gallery PATH`` (default: ``JAXSTYLE_GALLERY``, else the project's ``gallery.db``).
Errors end in one line on stderr and exit status 2 (:func:`~jaxstyle.cli.common.run_command`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from jaxstyle import gallery, paths
from jaxstyle.cli.common import EXIT_OK, add_gallery_flag
from jaxstyle.errors import JaxstyleError
from jaxstyle.runs import RUN_STATUSES

# A gallery command's work, given the open gallery; returns the exit status.
GalleryAction = Callable[[gallery.GalleryDatabase, argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``gallery`` command and its subcommands on ``subparsers``."""
    parser = subparsers.add_parser(
        "gallery",
        help="list, show, export, import or delete stored runs",
        description="Browse and back up the gallery of runs.",
    )
    add_gallery_flag(parser)
    commands = parser.add_subparsers(dest="gallery_command", metavar="{list,show,export,import,delete}")
    commands.required = True

    listing = commands.add_parser("list", help="list runs, newest first")
    listing.add_argument("--status", action="append", choices=RUN_STATUSES, help="only this status (repeatable)")
    listing.add_argument("--style", help="only runs using this style (catalog id, file name, URL or sha256)")
    listing.add_argument("--content", help="only runs using this content image (file name, URL or sha256)")
    listing.add_argument("--tag", help="only runs with this tag")
    listing.add_argument("--favorites", action="store_true", help="only favorites")
    listing.add_argument("--text", help="only runs whose title contains this")
    listing.add_argument("--since", help="created on or after (YYYY-MM-DD or an ISO time)")
    listing.add_argument("--until", help="created before (a bare YYYY-MM-DD includes that day)")
    listing.add_argument("--group", help="only runs of this group (e.g. one sweep)")
    listing.add_argument(
        "--order", default="newest", help="newest, oldest, title, loss or a setting such as -style_weight"
    )
    listing.add_argument("--limit", type=int, default=50, help="runs per page (1–1000, default 50)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many runs")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_in_gallery(_list))

    show = commands.add_parser("show", help="everything about one run")
    show.add_argument("run_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_in_gallery(_show))

    export = commands.add_parser("export", help="write the whole gallery to a zip, or one run (--run) to a folder")
    export.add_argument("--run", type=int, metavar="ID", help="export only this run, as PNG + JSON into the folder OUT")
    export.add_argument("out", type=Path, metavar="OUT", help="the zip file to write (or, with --run, a folder)")
    export.set_defaults(func=_in_gallery(_export))

    imports = commands.add_parser("import", help="add the runs of an exported zip (as new runs)")
    imports.add_argument("zip", type=Path, metavar="ZIP")
    imports.set_defaults(func=_in_gallery(_import, discard_new_gallery_on_error=True))

    delete = commands.add_parser("delete", help="delete a run and the input images no other run uses")
    delete.add_argument("run_id", type=int, metavar="ID")
    delete.add_argument("--force", action="store_true", help="delete it even if it is still queued or running")
    delete.set_defaults(func=_in_gallery(_delete))


def _in_gallery(action: GalleryAction, *, discard_new_gallery_on_error: bool = False) -> Callable[..., int]:
    """The command that runs ``action`` in the gallery of ``--gallery``. With
    ``discard_new_gallery_on_error`` (``import``), a refusal into a gallery that did not exist leaves
    no gallery file behind."""

    def command(args: argparse.Namespace) -> int:
        path = Path(args.gallery or paths.default_gallery_path())
        existed = path.exists()
        try:
            with gallery.connect(path) as db:
                return action(db, args)
        except JaxstyleError:
            if discard_new_gallery_on_error and not existed:
                for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    leftover.unlink(missing_ok=True)
            raise

    return command


def _local(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _list(db, args: argparse.Namespace) -> int:
    run_filter = gallery.RunFilter(
        style=args.style,
        content=args.content,
        tag=args.tag,
        favorite=True if args.favorites else None,
        status=args.status,
        since=args.since,
        until=args.until,
        text=args.text,
        group_id=args.group,
    )
    runs = gallery.list_runs(db, run_filter, order=args.order, limit=args.limit, offset=args.offset)
    total = gallery.count_runs(db, run_filter)
    if args.json:
        print(json.dumps({"total": total, "runs": [summary.to_dict() for summary in runs]}, indent=2))
        return EXIT_OK
    if not runs:
        print("no runs" if total == 0 else f"no runs on this page ({total} in all)")
        return EXIT_OK
    print(f"{'ID':>5}  {'CREATED':16}  {'STATUS':9}  {'SIZE':>5}  {'C/S/TV WEIGHTS':16}  {'LOSS':>9}  INPUTS — TITLE")
    for summary in runs:
        weights = "/".join(_number(w) for w in (summary.content_weight, summary.style_weight, summary.tv_weight))
        inputs = f"{summary.content_origin} × {' + '.join(summary.style_origins)}"
        title = f" — {summary.title}" if summary.title else ""
        star = "*" if summary.favorite else " "
        print(
            f"{summary.id:>5}{star} {_local(summary.created):16}  {summary.status:9}  {summary.size_px:>5}  "
            f"{weights:16}  {_number(summary.final_loss):>9}  {inputs}{title}"
        )
    if args.offset or len(runs) < total:
        print(f"({args.offset + 1}–{args.offset + len(runs)} of {total})")
    return EXIT_OK


def _show(db, args: argparse.Namespace) -> int:
    run_record = gallery.get_run(db, args.run_id)
    if args.json:
        print(json.dumps(run_record.to_dict(), indent=2))
        return EXIT_OK
    lines = [
        f"run {run_record.id}: {run_record.title or '(untitled)'}",
        f"  status: {run_record.status}" + (f" — {run_record.error}" if run_record.error else ""),
        f"  created: {_local(run_record.created)}",
        f"  tags: {', '.join(run_record.tags) or '-'}; favorite: {'yes' if run_record.favorite else 'no'}; "
        f"group: {run_record.group_id or '-'}",
        f"  content: {run_record.content.origin} ({run_record.content.width}×{run_record.content.height})",
        *(
            f"  style: {style.origin} ({style.width}×{style.height}), blend {_number(style.blend)}"
            for style in run_record.styles
        ),
        f"  weights: {run_record.weights_source or '-'}; device: {run_record.device or '-'}; "
        f"compile {_number(run_record.compile_s)} s, run {_number(run_record.run_s)} s",
        f"  progress: {run_record.step}/{run_record.total_steps or '?'} steps; "
        f"image: {'yes' if run_record.has_image else 'no'}",
        "  final losses: " + (", ".join(f"{k} {v:.4g}" for k, v in run_record.final_losses.items()) or "-"),
        f"  loss history: {len(run_record.loss_history)} entries",
        "  settings:",
        *(f"    {name}: {value}" for name, value in run_record.settings.items()),
    ]
    print("\n".join(lines))
    return EXIT_OK


def _export(db, args: argparse.Namespace) -> int:
    if args.run is not None:
        png_path, json_path = gallery.export_run(db, args.run, args.out)
        for path in (png_path, json_path):
            if path is not None:
                print(path)
        return EXIT_OK
    count = gallery.export_gallery(db, args.out)
    print(f"exported {count} run{'s' if count != 1 else ''} to {args.out}")
    return EXIT_OK


def _import(db, args: argparse.Namespace) -> int:
    imported = gallery.import_gallery(db, args.zip)
    print(imported.summary() + (f": {', '.join(map(str, imported))}" if imported else ""))
    return EXIT_OK


def _delete(db, args: argparse.Namespace) -> int:
    gallery.delete_run(db, args.run_id, force=args.force)
    print(f"deleted run {args.run_id}")
    return EXIT_OK

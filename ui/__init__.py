"""Every widget group and renderer the pages share, by area; the pages only arrange them.

- ``pages``: the app's pages, each defined once (script, title, icon, address): the navigation and
  every link and page switch use it.
- ``handoff``: moving a user to another page with a choice made (``open_generate``, ``open_run``,
  the runs chosen to compare); the target page turns the request into its own widget values.
- ``access``: who is using the app (personal mode, or a shared site's signed-in user), sign-in.
- ``common``: the process-wide resources (job runner, device, gallery connections), the failure
  guard, widget recall, header, badges and tiles.
- ``system``: the weights panel and the sidebar.
- ``inputs``: the content and style inputs and the catalog browser.
- ``settings_form``: presets and the Advanced settings.
- ``run_views``: a run live, its result.
- ``prefill``: Generate's side of a handoff (a method, a model, paintings, a run to re-run).
- ``gallery_views``: cards, filters, one run in full, export and import.
- ``compare_views``: runs side by side and weight sweeps.
- ``instant_views``: Generate's Instant method: the model chooser, a trained model's form, painting,
  the result, Refine.
- ``builtin_views``: the built-in instant models: their painters, their form, their styles' pictures.
- ``model_views``: the Models page: model cards, import, the training form and live trainings.
- ``live_views``: the Live page: the camera painted as it films, captures, and video files.

Rules kept here: widget keys are explicit and stable (tests use them), and only the module that
makes a widget writes its key (another page asks through ``handoff``); session state holds only UI
facts (ids, choices), never images or connections, with one exception: the Live page's live
painter, which belongs to that session's camera stream (its network, its latest frames, the
paintings it paints with) and goes with the session; the gallery is opened per operation; the job
runner and device probe are process-wide via ``st.cache_resource``; every failure becomes a
message (``guard``), never a traceback. What is not UI (loading inputs, sweeps, following a run)
lives in the core, ``jaxstyle/``.

This package exports what ``dashboard.py`` and the pages use; the modules import from each other
directly. A new page is a script in ``app_pages/`` that calls these, and one entry in ``pages.PAGES``.
"""

from ui import handoff, pages
from ui.access import account, mine, share, signed_in, site
from ui.common import CSS, app_icon, chunks, cover, db, device, gallery_path, guard, header, placeholder, runner
from ui.compare_views import compare_picker, comparison, sweep_form, sweep_groups, sweep_view
from ui.gallery_views import close_run, gallery_archive, gallery_filters, gallery_grid, run_detail, run_grid
from ui.inputs import content_input, download_style, style_download_error, style_input, style_thumbnail
from ui.instant_views import generate_method, instant_form, instant_output, paint
from ui.live_views import live_camera, live_form, live_video
from ui.model_views import model_import, model_list, model_outcome, start_training, train_form, training_view
from ui.prefill import prefill_generate
from ui.run_views import run_view
from ui.settings_form import settings_form
from ui.system import runs_panel, sidebar, weights_panel

__all__ = [
    "CSS",
    "account",
    "app_icon",
    "chunks",
    "close_run",
    "compare_picker",
    "comparison",
    "content_input",
    "cover",
    "db",
    "device",
    "download_style",
    "gallery_archive",
    "gallery_filters",
    "gallery_grid",
    "gallery_path",
    "generate_method",
    "guard",
    "handoff",
    "header",
    "instant_form",
    "instant_output",
    "live_camera",
    "live_form",
    "live_video",
    "mine",
    "model_import",
    "model_list",
    "model_outcome",
    "pages",
    "paint",
    "placeholder",
    "prefill_generate",
    "run_detail",
    "run_grid",
    "run_view",
    "runner",
    "runs_panel",
    "settings_form",
    "share",
    "sidebar",
    "signed_in",
    "site",
    "start_training",
    "style_download_error",
    "style_input",
    "style_thumbnail",
    "sweep_form",
    "sweep_groups",
    "sweep_view",
    "train_form",
    "training_view",
    "weights_panel",
]

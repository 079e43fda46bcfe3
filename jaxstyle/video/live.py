"""The camera, painted live: frames come from a WebRTC stream's thread, one at a time, and go back
painted; the page changes the style while the stream runs and reads how fast it paints.

:class:`LivePainter` is what the stream's thread calls and the page talks to:

- the style (:class:`LiveStyle`) is swapped without stopping the stream; the network with the new
  style (and compiled for the camera's frame size) is made once, on a thread of its own, never per
  frame and never on the stream's thread (streamlit-webrtc ends a stream whose frame takes 10 s,
  and a first compile on two busy cores came near that); meanwhile the previous style goes on
  painting, or, before the first, the camera's frames go back as they came;
- a frame that arrives while another is being painted is dropped, not queued (its caller gets the
  last painted frame back at once), so the picture lags the camera by one frame at most;
- it counts painted and dropped frames, the recent frames per second and milliseconds per frame,
  and keeps the latest camera frame and its painting for *Capture*.

:class:`FrameProcessor` is the glue to streamlit-webrtc's processor interface (``recv_queued``:
all frames that queued up during the last painting; only the newest is painted).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from jaxstyle.errors import SettingsError
from jaxstyle.instant.passes import StyledNetwork
from jaxstyle.video.flicker import DEFAULT_SMOOTH, TemporalFilter, check_smooth
from jaxstyle.video.frames import DEFAULT_WORK_PX, FramePainter, styled_network

ICE_SERVERS_VARIABLE = "JAXSTYLE_ICE_SERVERS"
_RATE_WINDOW_S = 2.0  # frames per second are counted over the last two seconds


def ice_servers(environ: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The ICE servers WebRTC may use: none by default (the browser and the app on one machine or
    LAN reach each other directly), else the JSON list in ``JAXSTYLE_ICE_SERVERS``, e.g.
    ``[{"urls": ["stun:stun.l.google.com:19302"]}]`` or a TURN server with its credentials.

    Raises:
        SettingsError: a value that is not a JSON list of objects with "urls".
    """
    text = (os.environ if environ is None else environ).get(ICE_SERVERS_VARIABLE, "").strip()
    if not text:
        return []
    try:
        servers = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(f"{ICE_SERVERS_VARIABLE} is not JSON ({error.msg}); give a list like "
                            '[{"urls": ["stun:stun.example.org:3478"]}]') from None  # fmt: skip
    if not isinstance(servers, list) or not all(isinstance(s, dict) and s.get("urls") for s in servers):
        raise SettingsError(f'{ICE_SERVERS_VARIABLE} must be a JSON list of objects with "urls", got {text[:80]!r}')
    return servers


@dataclasses.dataclass(frozen=True)
class LiveStyle:
    """What the live stream paints with; a new one takes effect on the next frame."""

    painter: Any  # a built-in painter or a trained model's Painter
    styles: tuple  # arbitrary: PIL paintings; others: style names
    blend: tuple[float, ...] | None = None
    strength: float = 1.0  # arbitrary only: towards the camera's own style below 1
    work_px: int = DEFAULT_WORK_PX
    smooth: float = DEFAULT_SMOOTH
    key: str = ""  # what the page calls this style (its widgets' values), to tell a change from a rerun


@dataclasses.dataclass(frozen=True)
class LiveStats:
    painted: int  # frames painted since the stream started
    dropped: int  # frames that arrived while one was being painted
    fps: float  # painted frames per second, over the last two seconds
    ms_per_frame: float  # painting time of the recent frames (scale, pass, scale back)
    error: str = ""  # why the last frame could not be painted (shown on the page)

    def line(self) -> str:
        return f"painted frames: {self.painted} · {self.fps:.1f} fps · {self.ms_per_frame:.0f} ms per frame"


class LivePainter:
    """Paints camera frames with the current :class:`LiveStyle` (see the module's docstring)."""

    def __init__(self, style: LiveStyle | None = None, *, make_network: Callable[..., StyledNetwork] = styled_network):
        self._make_network = make_network
        self._style = style
        # The network that paints now: (its style, the frame shape it is compiled for, its FramePainter).
        self._ready: tuple[LiveStyle, tuple[int, ...], FramePainter] | None = None
        self._building: tuple[LiveStyle, tuple[int, ...]] | None = None  # what the builder thread makes
        self._failed: tuple[LiveStyle, tuple[int, ...]] | None = None  # made in vain: not tried again
        self._installed = threading.Condition()
        self._busy = threading.Lock()  # held while a frame is painted
        self._state = threading.Lock()  # guards the fields below
        self._painted = 0
        self._dropped = 0
        self._times: collections.deque[tuple[float, float]] = collections.deque()  # (finished at, seconds)
        self._latest: tuple[np.ndarray, np.ndarray] | None = None
        self._error = ""

    @property
    def style(self) -> LiveStyle | None:
        with self._state:
            return self._style

    def set_style(self, style: LiveStyle) -> None:
        """Paint with ``style`` from the next frames on: its network is made (and checked) on a
        thread at the next frame, while the current style goes on painting."""
        check_smooth(style.smooth)
        with self._state:
            # A page reruns often with the same widgets: the same key keeps the network it has.
            if self._style is None or not style.key or style.key != self._style.key:
                self._style = style

    def process(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` (H, W, 3 uint8 RGB) painted; while another frame is being painted, the last
        painted frame (or ``frame`` itself before the first) comes back at once and ``frame`` is
        dropped. Before the style's network is ready, ``frame`` comes back as it came."""
        if not self._busy.acquire(blocking=False):
            with self._state:
                self._dropped += 1
                latest = self._latest
            return latest[1] if latest is not None and latest[1].shape == frame.shape else frame
        try:
            return self._paint(frame)
        finally:
            self._busy.release()

    def count_dropped(self, frames: int) -> None:
        """Frames the stream dropped before they reached :meth:`process` (they queued up behind one)."""
        with self._state:
            self._dropped += frames

    def _paint(self, frame: np.ndarray) -> np.ndarray:
        frames = self._frames_for(frame)
        if frames is None:  # no network for this frame yet: it goes back as it came
            return frame
        try:
            painted = frames.paint(frame)
        except Exception as error:  # noqa: BLE001 — the stream must go on; the page shows why
            with self._state:
                self._error = str(error) or type(error).__name__
            return frame
        now = time.monotonic()
        with self._state:
            self._painted += 1
            self._error = ""
            self._times.append((now, frames.last_paint_s))
            while self._times and now - self._times[0][0] > _RATE_WINDOW_S:
                self._times.popleft()
            self._latest = (frame, painted)
        return painted

    def _frames_for(self, frame: np.ndarray) -> FramePainter | None:
        """The painter for ``frame``: the current style's, compiled for its shape; while that one is
        made (on a thread: :meth:`_build`), the previous style's if it fits the frame, else None."""
        with self._state:
            style, ready = self._style, self._ready
            if style is None:
                return None
            wanted = (style, frame.shape)
            if ready is not None and ready[0] is style and ready[1] == frame.shape:
                return ready[2]
            if self._building is None and self._failed != wanted:
                self._building = wanted
                threading.Thread(target=self._build, args=(style, frame.copy()), name="jaxstyle-live-build",
                                 daemon=True).start()  # fmt: skip
        return ready[2] if ready is not None and ready[1] == frame.shape else None

    def _build(self, style: LiveStyle, frame: np.ndarray) -> None:
        """Make ``style``'s network (its style vector: the predictor, the first time) and compile it
        for ``frame``'s shape, then let it paint."""
        try:
            photo = Image.fromarray(frame) if style.strength < 1.0 else None
            network = self._make_network(style.painter, style.styles, style.blend, strength=style.strength,
                                         photo=photo)  # fmt: skip
            frames = FramePainter(network, style.work_px, TemporalFilter(style.smooth))
            frames.warm_up(*frame.shape[:2])
        except Exception as error:  # noqa: BLE001 — the stream goes on unpainted; the page shows why
            with self._state:
                self._error = str(error) or type(error).__name__
                self._failed, self._building = (style, frame.shape), None
            return
        with self._state:
            self._ready, self._building, self._error = (style, frame.shape, frames), None, ""
        with self._installed:
            self._installed.notify_all()

    def wait_ready(self, timeout_s: float = 60.0) -> bool:
        """Wait until the current style's network paints (what a benchmark or a test waits for
        after :meth:`set_style` and a first frame). False after ``timeout_s`` or a failed build."""
        deadline = time.monotonic() + timeout_s
        with self._installed:
            while True:
                with self._state:
                    ready, style, failed = self._ready, self._style, self._failed
                if ready is not None and ready[0] is style:
                    return True
                if failed is not None and failed[0] is style:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._installed.wait(min(left, 0.1))

    def stats(self) -> LiveStats:
        with self._state:
            times = list(self._times)
            painted, dropped, error = self._painted, self._dropped, self._error
        fps = (len(times) - 1) / max(times[-1][0] - times[0][0], 1e-6) if len(times) >= 2 else 0.0
        ms = 1000.0 * float(np.mean([seconds for _, seconds in times])) if times else 0.0
        return LiveStats(painted, dropped, fps, ms, error)

    def latest(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The latest camera frame and its painting, or None before the first painted frame."""
        with self._state:
            return self._latest


class FrameProcessor:
    """streamlit-webrtc's video processor: the newest of the queued frames is painted by ``live``
    (the others are dropped and counted), and goes back with the camera frame's timestamp."""

    def __init__(self, live: LivePainter) -> None:
        self.live = live

    def recv(self, frame: Any) -> Any:
        return self._paint(frame)

    async def recv_queued(self, frames: Sequence[Any]) -> list[Any]:
        if len(frames) > 1:
            self.live.count_dropped(len(frames) - 1)
        return [self._paint(frames[-1])]

    def _paint(self, frame: Any) -> Any:
        import av

        painted = self.live.process(frame.to_ndarray(format="rgb24"))
        out = av.VideoFrame.from_ndarray(painted, format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

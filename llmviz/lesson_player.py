"""Playing a lesson in presentation mode: each step's model, text, view and settings, in turn.

A step with a problem (bad TOML, an unknown view or setting) still shows its title and text
with a banner naming the file and line; every other step works.  While a step is shown the
next one's view is built, given its settings and asked to compute (it is hidden, so nothing
flickers), and its head statistics fetched, so moving on draws at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from .core import targets
from .core.lessons import Lesson, LessonStep, check_views
from .core.quiz_results import HeadStatistics
from .core.specs import ModelSpec
from .workers.jobs import JobOutcome

if TYPE_CHECKING:
    from .main_window import MainWindow
    from .widgets.lesson_panel import LessonPanel


class LessonPlayer(QObject):
    """The Navigator of presentation mode while a lesson is open."""

    sig_step = Signal(int)
    """The step now shown (0-based)."""
    sig_step_drawn = Signal(int, float)
    """(step, seconds from the key to the view's drawing)."""

    def __init__(self, window: MainWindow, lesson: Lesson) -> None:
        super().__init__(window)
        self.window = window
        self.lesson = check_views(lesson, {name: cls.STATE for name, cls in window.view_classes.items()})
        self.index = 0
        self.step_times: list[float] = []
        self._started: float | None = None
        self._waiting_view: str | None = None
        self._pending_pick: LessonStep | None = None
        self._apply_after_trace: LessonStep | None = None
        #: What the user had before the lesson's steps changed it (model, text, view settings);
        #: put back when presentation mode ends.
        self.before: dict[str, Any] | None = None
        window.presentation.sig_changed.connect(self._presentation_changed)
        window.host.sig_trace.connect(self._on_trace)
        window.sig_view_created.connect(lambda view: view.sig_ready.connect(lambda v=view: self._drawn(v.NAME)))
        for view in window.views.values():
            view.sig_ready.connect(lambda v=view: self._drawn(v.NAME))

    # -- Navigator ------------------------------------------------------------------------------
    def count(self) -> int:
        return len(self.lesson.steps)

    def current(self) -> int:
        return self.index

    def go(self, index: int) -> None:
        """Show step `index` (clamped): its panel text at once, then its model, text and view."""
        if not self.lesson.steps:
            self._panel().show_step(0, 0, self.lesson.title, "This lesson has no steps.")
            self._banner()
            return
        self.index = max(0, min(index, self.count() - 1))
        step = self.lesson.steps[self.index]
        if self.before is None and self.window.presentation.active:
            self.before = self.snapshot()
        self._started = time.perf_counter()
        self._panel().show_step(self.index, self.count(), step.title, step.explanation)
        self._banner(step)
        reloading = self._ensure_model(step)
        rerunning = self._ensure_text(step)
        if step.view in self.window.docks:
            self.window.presentation.show_view(step.view)
            self._waiting_view = step.view
            view = self.window.view(step.view)
            if view.is_ready() and not (reloading or rerunning):
                self._drawn(step.view)
            self._apply(step)
            self._apply_after_trace = step if (reloading or rerunning) else None
        elif self.window.presentation.active:
            self._waiting_view = None
            self.window.presentation.show_panel_only()
        self.sig_step.emit(self.index)
        QTimer.singleShot(0, self._precompute_next)

    # -- what the user had ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The model, text and every view's settings as the user has them now."""
        w = self.window
        spec = w.loaded_spec if w.info is not None else None
        return {"spec": spec, "text": w.text_input.text(),
                "views": {name: view.desktop_state() for name, view in w.views.items()}}

    def presentation_disconnect(self) -> None:
        """Replaced by another player (deleted later): leaving presentation is no longer ours."""
        self.window.presentation.sig_changed.disconnect(self._presentation_changed)

    def _presentation_changed(self, active: bool) -> None:
        if not active and self.before is not None and self.window.presentation.navigator is self:
            before, self.before = self.before, None
            if before["spec"] is not None:  # with no model yet, the lesson's is the only state there is
                self.restore(before)

    def restore(self, before: dict[str, Any]) -> None:
        """Put the user's model, text and view settings back (leaving the lesson loses nothing)."""
        w = self.window
        self._apply_after_trace = self._pending_pick = None
        self._waiting_view = None
        spec: ModelSpec | None = before["spec"]
        current = w.requested_spec or w.loaded_spec
        reload = spec is not None and (current is None or current.source != spec.source)
        if reload:
            w.load_model(spec)
        rerun = reload or w.text_input.text() != before["text"] or (w.trace is not None and w.trace.text != before["text"])
        if rerun:
            w.text_input.set_text(before["text"])
            w.run_text(before["text"])
        for name, state in before["views"].items():
            if name in w.views and state:
                w.views[name].restore_state(state)
        if rerun:  # again once the text has run (layer and head ranges follow the trace)
            w._states_to_restore = dict(before["views"])  # the window's restore-after-trace

    # -- the parts of a step --------------------------------------------------------------------
    def _panel(self) -> LessonPanel:
        return self.window.presentation.panel

    def _banner(self, step: LessonStep | None = None) -> None:
        banner = self._panel().banner
        if step is not None and step.problem is not None:
            banner.show_message(f"{step.problem}. The other steps work.", "error")
        elif self.index == 0 and self.lesson.problems:
            broken = [p for p in self.lesson.problems]
            banner.show_message(f"{len(broken)} problem(s) in this lesson; first: {broken[0]}.", "warning")
        else:
            banner.dismiss()

    def model_for(self, step: LessonStep) -> str | None:
        return step.model or self.lesson.model

    def text_for(self, step: LessonStep) -> str | None:
        return step.text if step.text is not None else self.lesson.text

    def _ensure_model(self, step: LessonStep) -> bool:
        want = self.model_for(step)
        w = self.window
        current = (w.requested_spec or w.loaded_spec)
        if not want or (current is not None and current.source == want):
            return False
        spec = ModelSpec(want, current.device if current else "auto", current.dtype if current else "auto")
        w.load_model(spec)
        return True

    def _ensure_text(self, step: LessonStep) -> bool:
        want = self.text_for(step)
        w = self.window
        if want is None or (w.trace is not None and w.trace.text == want and w.text_input.text() == want):
            return False
        w.text_input.set_text(want)
        w.run_text(want)
        return True

    def _apply(self, step: LessonStep) -> None:
        """The step's settings on its view; a setting the view cannot take goes to the banner."""
        view = self.window.view(step.view)
        unused = view.restore_state(step.state) if step.state else []
        if unused and step.problem is None:
            self._panel().banner.show_message(
                f"{self.lesson.path.split('/')[-1]}, line {step.line}: the {step.view} view could not use "
                f"{', '.join(map(repr, unused))}. The other steps work.", "warning")
        if step.pick:
            self._pending_pick = step
            self._request_pick(step)

    def _request_pick(self, step: LessonStep) -> None:
        trace = self.window.trace
        if trace is None or self.text_for(step) not in (None, trace.text):
            return  # asked again when the step's trace arrives
        self.window.host.call(targets.QUIZ_HEAD_STATISTICS, channel="lesson.heads", label="Finding notable heads",
                              on_done=lambda o, s=step: self._picked(s, o), trace_id=trace.id)

    def _picked(self, step: LessonStep, outcome: JobOutcome) -> None:
        if self._pending_pick is not step or self.lesson.steps[self.index] is not step:
            return
        self._pending_pick = None
        if not outcome.ok:
            self._panel().banner.show_message(f"Could not find the head to show: {outcome.message}", "warning")
            return
        stats: HeadStatistics = outcome.value
        layer, head = stats.best(step.pick or "previous-token")
        share = (stats.previous if step.pick == "previous-token" else stats.first)[layer, head]
        self.window.view(step.view).restore_state({"layer": layer, "head": head})
        what = "the previous token" if step.pick == "previous-token" else "the first token"
        self._panel().show_step(self.index, self.count(), step.title,
                                step.explanation + f"\n\n**Layer {layer}, head {head}**: {share:.0%} of its "
                                f"attention on {what}, averaged over this text.")

    def _on_trace(self, _trace: Any) -> None:
        step, self._apply_after_trace = self._apply_after_trace, None
        if step is not None and self.lesson.steps[self.index] is step and self.window.presentation.active:
            self._apply(step)
        elif self._pending_pick is not None:
            self._request_pick(self._pending_pick)

    def _drawn(self, name: str) -> None:
        if self._waiting_view == name and self._started is not None:
            seconds = time.perf_counter() - self._started
            self._waiting_view, self._started = None, None
            self.step_times.append(seconds)
            self.sig_step_drawn.emit(self.index, seconds)

    def _precompute_next(self) -> None:
        """Build, set and compute the next step's view while this one is shown (same model and
        text only: a different text would replace the one on screen)."""
        if self.index + 1 >= self.count():
            return
        step, nxt = self.lesson.steps[self.index], self.lesson.steps[self.index + 1]
        w = self.window
        if (nxt.view not in w.docks or nxt.view == step.view or self.model_for(nxt) != self.model_for(step)
                or self.text_for(nxt) != self.text_for(step) or w.trace is None):
            if nxt.pick and nxt.view == step.view and w.trace is not None:
                w.host.call(targets.QUIZ_HEAD_STATISTICS, channel="lesson.heads.next", label="Finding notable heads",
                            on_done=lambda _o: None, trace_id=w.trace.id)
            return
        view = w.view(nxt.view)
        if nxt.state:
            view.restore_state(nxt.state)
        view.warm()
        if nxt.pick:
            w.host.call(targets.QUIZ_HEAD_STATISTICS, channel="lesson.heads.next", label="Finding notable heads",
                        on_done=lambda _o: None, trace_id=w.trace.id)

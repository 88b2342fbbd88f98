"""A flow kind: everything one ``kind:`` of the policy means, in one class.

The policy names a flow's kind (``reference-load``, ``nik-lookup``,
``nip-compare``); the kind says what else such a flow must declare, what the
pipeline must know of it and how it turns rows into an answer. Each kind is a
subclass in the module of its handler, overriding what differs from the
defaults here (as a Mailman runner overrides one method), and registered once
in :data:`exchanged.flows.KINDS`. The policy loader and the pipeline ask the
registry; neither names a kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, ClassVar

from exchanged.csvio import CsvReader
from exchanged.flows.base import FlowContext, FlowResult
from exchanged.flows.model import Flow

#: a place in a policy file, below the flow's own key: ("columns",), ("answer",), ...
Where = tuple[str | int, ...]


@dataclass(frozen=True)
class FlowProblem:
    """What a flow of some kind fails to declare, and where.

    ``path`` is relative to the flow's own key in the policy file (``()`` for
    the flow itself), so that the loader can name the file and the line; the
    message is the sentence the loader prints after the path.
    """

    path: Where
    message: str


class FlowKind(ABC):
    """One kind of flow: its policy checks, what the pipeline must know, its handler."""

    #: the kind as the policy names it (``kind:``)
    name: ClassVar[str]
    #: whether a batch without a row is refused (NO_ROWS) once the flow has run; a kind
    #: that refuses an empty batch itself, cleaning up what it began, says False
    needs_rows: ClassVar[bool] = True
    #: whether a batch of it makes a new reference snapshot of the flow's ``dataset``
    builds_dataset: ClassVar[bool] = False
    #: whether its flows may carry a fuzzy fallback (``fuzzy:``); asked while the
    #: flow is read, before the fallback itself is checked
    fuzzy_fallback: ClassVar[bool] = False
    #: whether its flows may bound how often one NIP is compared
    #: (``max_comparisons_per_nip``); read with the flow, before :meth:`check`
    bounds_comparisons: ClassVar[bool] = False

    def check(self, flow: Flow) -> Iterator[FlowProblem]:
        """What a flow of this kind must declare beyond what every flow must.

        ``flow`` is the flow as read and checked so far: everything but its
        fuzzy fallback (see :attr:`fuzzy_fallback`). The loader refuses the
        flow with the first problem, so order them as a reader would fix them.
        """
        return iter(())

    @abstractmethod
    def run(self, reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
        """Turn the rows of an opened batch into its answer, written to ``out``."""

    def __repr__(self) -> str:
        return f"<flow kind {self.name}>"


def matching_problems(kind: FlowKind, flow: Flow, key: str,
                      statuses: tuple[str, ...]) -> Iterator[FlowProblem]:
    """The checks of a kind that matches each row by ``key`` against a reference dataset
    and answers with ``statuses`` (names of :class:`~exchanged.flows.model.Answer`)."""
    if flow.reference is None:
        yield FlowProblem((), f"a {kind.name} flow must name the reference dataset it matches")
    if key not in flow.required:
        yield FlowProblem(("columns",), f"a {kind.name} flow must require column {key}")
    missing = [s for s in statuses if not getattr(flow.answer, s)]
    if missing:
        yield FlowProblem(("answer",), f"needs the statuses {', '.join(missing)}")

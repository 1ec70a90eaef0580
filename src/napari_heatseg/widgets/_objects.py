"""Objects of the annotation loop: the one being corrected and the ones accepted.

:class:`Checkpoints` remembers the results of the object being corrected, keyed by the
clicks that made them, so that a removed click goes back to the result without it.
:class:`AcceptedObjects` writes each accepted object as the next free id of a Labels layer
(never over other labels, one undo step) and can take the last one out again.
"""

import numpy as np

from ._layers import apply_labels

__all__ = ["AcceptedObjects", "Checkpoints", "next_free_id"]

#: Memory kept for the results of one object (beyond it, the oldest results are dropped).
CHECKPOINT_BYTES = 256 * 2**20


class Checkpoints:
    """Results of the current object by their clicks: ``((clicks...), labels)`` pairs.

    A result is reached from the latest checkpoint whose clicks are the first clicks of
    the current ones (:meth:`best`); the clicks added since are the corrections to run.
    """

    def __init__(self, budget=CHECKPOINT_BYTES):
        self.budget = budget
        self._items = []

    def reset(self, base=None):
        """Forget every result; ``base`` (labels) is the result before any click."""
        self._items = [] if base is None else [((), base.copy())]

    def add(self, key, labels):
        """Keep ``labels`` as the result of clicks ``key``; results on other branches go."""
        self._items = [(k, v) for k, v in self._items if k == key[: len(k)] and k != key]
        self._items.append((key, labels.copy()))
        while len(self._items) > 2 and sum(v.nbytes for _, v in self._items) > self.budget:
            del self._items[1]  # keep the first (the base) and the latest

    def best(self, key):
        """``(clicks, labels)`` of the latest result whose clicks start ``key``, or ``(None, None)``."""
        for k, labels in reversed(self._items):
            if k == key[: len(k)]:
                return k, labels
        return None, None


def next_free_id(layer):
    """One more than the largest label of ``layer`` (ids are never reused while they exist)."""
    data = np.asarray(layer.data)
    return int(data.max()) + 1 if data.size else 1


class AcceptedObjects:
    """The objects accepted in this session, newest last, for "undo last accept"."""

    def __init__(self):
        self._log = []  # (target layer, ids, indices written)

    def __len__(self):
        return len(self._log)

    def accept(self, target, labels, metadata=None):
        """Write each label of ``labels`` as a new id into the unlabelled voxels of ``target``.

        Parameters
        ----------
        target : napari.layers.Labels
        labels : ndarray of int
            The object(s) to accept, same shape as ``target.data``; one new id per label value.
        metadata : dict, optional
            Recorded in ``target.metadata['heatseg']`` with the ids.

        Returns
        -------
        ids : list of int
            The ids written (empty if every voxel of the object was labelled already).
        """
        values = np.unique(labels[labels > 0])
        first = next_free_id(target)
        relabelled = np.zeros(labels.shape, np.int64)
        relabelled[labels > 0] = first + np.searchsorted(values, labels[labels > 0])
        written = (relabelled > 0) & (np.asarray(target.data) == 0)
        ids = [int(i) for i in np.unique(relabelled[written])]
        record = dict(metadata or {}, accepted_ids=ids)
        if not apply_labels(target, relabelled, only_unlabelled=True, metadata=record):
            return []
        self._log.append((target, ids, np.nonzero(written)))
        return ids

    def undo_last(self):
        """Take the last accepted object out of its layer (one undo step); its voxels that
        were relabelled since stay. Returns ``(layer, ids)``, or None if nothing is left."""
        if not self._log:
            return None
        target, ids, indices = self._log.pop()
        still = np.isin(np.asarray(target.data)[indices], ids)
        if still.any():
            with target.block_history():
                target.data_setitem(tuple(i[still] for i in indices), 0)
        target.metadata.setdefault("heatseg", []).append({"undone_ids": ids, "changed_voxels": int(still.sum())})
        return target, ids

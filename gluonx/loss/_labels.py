"""Checks of class-index labels shared by the losses that take them."""
import numpy as np

from ._base import _fail, _squeezed


def check_index_shape(loss, name, label, pred, axis):
    """``label`` must be ``pred`` without its class ``axis`` (or with it of size 1)."""
    axis = axis % len(pred)
    expected = pred[:axis] + pred[axis + 1:]
    same = _squeezed(label) == _squeezed(expected) and \
        int(np.prod(label)) == int(np.prod(expected))
    if same or label == pred[:axis] + (1,) + pred[axis + 1:]:
        return
    _fail(loss, name, "has shape %s, expected class indices of shape %s (pred's shape %s "
          "without axis %d)" % (label, expected, pred, axis))


def check_index_values(loss, name, label, classes, ignore_index=None, used=None):
    """``label`` (numpy) must hold integers in [0, classes), or ``ignore_index``;
    only the entries where ``used`` is true are checked (all when None)."""
    valid = (label >= 0) & (label < classes) & (label == np.floor(label))
    if ignore_index is not None:
        valid |= label == ignore_index
    if used is not None:
        valid |= ~used
    if not valid.all():
        bad = label[~valid].ravel()[0]
        extra = " (or %r, the ignore_index)" % ignore_index if ignore_index is not None else ""
        _fail(loss, name, "holds %r; class indices must be integers in [0, %d)%s"
              % (bad, classes, extra))


def check_probabilities(loss, name, values):
    """``values`` (numpy) must lie in [0, 1]."""
    if not ((values >= 0) & (values <= 1)).all():
        _fail(loss, name, "must hold probabilities in [0, 1]")

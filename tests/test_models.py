"""The examples' classifier: a Ctrl-C during training raises, a deliberate stop does not."""

import signal
import threading

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback, EarlyStopping

from sklearn_id.datasets import load_digit_images
from sklearn_id.models import TrainingInterrupted, make_digits_classifier


class _CtrlCAfter(Callback):
    """Sends the process a real SIGINT at the end of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            signal.raise_signal(signal.SIGINT)


@pytest.fixture(autouse=True)
def _ctrl_c_delivered():
    """Python's own SIGINT handler, as in a terminal: a process started with SIGINT ignored (a background job of
    a shell without job control, nohup) would otherwise never see the test's Ctrl-C."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digit_images()
    return images[:200], labels[:200]


def test_ctrl_c_during_training_raises_with_the_epochs_that_ran_and_restores_the_handler(digits):
    handler = signal.getsignal(signal.SIGINT)
    net = make_digits_classifier(max_epochs=6, width=4, hidden=8, callbacks=[_CtrlCAfter(2)])
    with pytest.raises(TrainingInterrupted, match="training was interrupted after 2 of 6 epochs"):
        net.fit(*digits)
    assert signal.getsignal(signal.SIGINT) is handler
    assert len(net.history) == 2  # the net keeps what it ran


def test_a_stop_by_early_stopping_is_not_an_interruption(digits):
    # EarlyStopping ends skorch's loop with the same KeyboardInterrupt; it must return as usual.
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=1e9, threshold_mode="abs", sink=lambda *a: None)
    net = make_digits_classifier(max_epochs=20, width=4, hidden=8, callbacks=[stop]).fit(*digits)
    assert 1 < len(net.history) < 20


def test_grid_search_stops_at_the_interrupted_fit_rather_than_scoring_it(digits):
    net = make_digits_classifier(width=4, hidden=8, callbacks=[_CtrlCAfter(1)])
    search = GridSearchCV(net, {"max_epochs": [3, 4]}, cv=2, error_score=np.nan)
    with pytest.raises(TrainingInterrupted, match="after 1 of 3 epochs"):
        search.fit(*digits)


def test_training_in_another_thread_leaves_the_handler_alone(digits):
    handler = signal.getsignal(signal.SIGINT)
    seen = []
    net = make_digits_classifier(max_epochs=2, width=4, hidden=8)

    class _Look(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(signal.getsignal(signal.SIGINT))

    net.set_params(callbacks=[_Look()])
    thread = threading.Thread(target=net.fit, args=digits)
    with torch.random.fork_rng():
        thread.start()
        thread.join()
    assert seen == [handler, handler] and len(net.history) == 2

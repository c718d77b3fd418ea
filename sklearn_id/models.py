"""A small CNN for the 8x8 digits: the seed paper's MNIST network scaled to the images, and its skorch wrapper."""

import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from sklearn_id._interrupts import TrainingInterrupted, noticing_interrupts

__all__ = ["DigitsCNN", "DigitsClassifier", "EpochProgressBar", "TrainingInterrupted", "make_digits_classifier"]


class DigitsCNN(nn.Module):
    """Two convolution and pooling stages, then two fully connected layers.

    Ansuini et al. (2019, Fig. 6B) used conv 1->32 (3x3), pool, conv 32->64
    (3x3), pool, fc 1600->128, fc 128->10 on MNIST. Here the convolutions
    are padded so that 8x8 digits survive both poolings (8 -> 4 -> 2), and
    the widths are parameters, so families of networks can be compared.

    Parameters
    ----------
    width : int, default=32
        Channels of the first convolution; the second has twice as many.
    hidden : int, default=128
        Units of the last hidden layer ``d1``.
    n_convolutions : int, default=2
        Convolution and pooling stages, 1 or 2.
    n_classes : int, default=10

    Examples
    --------
    >>> import torch
    >>> from sklearn_id.models import DigitsCNN
    >>> [name for name, _ in DigitsCNN().named_children()]
    ['conv1', 'relu1', 'pool1', 'conv2', 'relu2', 'pool2', 'flatten', 'd1', 'relu3', 'output']
    >>> DigitsCNN(width=8)(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 10])
    """

    def __init__(self, width=32, hidden=128, n_convolutions=2, n_classes=10):
        super().__init__()
        channels, size = 1, 8
        for stage in range(1, n_convolutions + 1):
            out_channels = width * 2 ** (stage - 1)
            self.add_module(f"conv{stage}", nn.Conv2d(channels, out_channels, 3, padding=1))
            self.add_module(f"relu{stage}", nn.ReLU())
            self.add_module(f"pool{stage}", nn.MaxPool2d(2))
            channels, size = out_channels, size // 2
        self.flatten = nn.Flatten()
        self.d1 = nn.Linear(channels * size * size, hidden)
        self.add_module(f"relu{n_convolutions + 1}", nn.ReLU())
        self.output = nn.Linear(hidden, n_classes)

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x


def make_digits_classifier(
    *, max_epochs=15, lr=2e-3, batch_size=64, device="cpu", callbacks=None, verbose=0, **module_params
):
    """A skorch ``NeuralNetClassifier`` around :class:`DigitsCNN`, trained with Adam.

    Parameters
    ----------
    max_epochs : int, default=15
    lr : float, default=2e-3
    batch_size : int, default=64
    device : str, default="cpu"
    callbacks : list of skorch callbacks, default=None
    verbose : int, default=0
        skorch's per-epoch table when 1.
    **module_params
        ``width``, ``hidden``, ``n_convolutions``: passed to the module as
        ``module__<name>``, so ``GridSearchCV`` can tune them.

    Returns
    -------
    net : DigitsClassifier
        A ``NeuralNetClassifier`` that raises :class:`TrainingInterrupted` when
        Ctrl-C ends its training early. Not yet fitted; seed torch (``torch.manual_seed``) before ``fit`` for
        reproducible weights.

    Examples
    --------
    >>> import torch
    >>> from sklearn_id.datasets import load_digit_images
    >>> from sklearn_id.models import make_digits_classifier
    >>> images, labels = load_digit_images()
    >>> _ = torch.manual_seed(0)
    >>> net = make_digits_classifier(max_epochs=3, width=8).fit(images, labels)
    >>> bool(net.score(images, labels) > 0.8)
    True
    """
    return DigitsClassifier(
        DigitsCNN,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        train_split=None,
        device=device,
        callbacks=callbacks,
        verbose=verbose,
        iterator_train__shuffle=True,
        **{f"module__{name}": value for name, value in module_params.items()},
    )


class DigitsClassifier(NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier``, except that a Ctrl-C during training raises.

    skorch ends training quietly on ``KeyboardInterrupt``, so a net stopped by
    Ctrl-C after 1 of 20 epochs would be scored, profiled and plotted as if it
    were trained. This one raises :class:`TrainingInterrupted` ("training was
    interrupted after k of n epochs") once skorch has returned; the net keeps
    the epochs it ran. A stop by a callback such as ``EarlyStopping`` is not a
    Ctrl-C and returns as usual.

    Examples
    --------
    >>> from sklearn_id.models import DigitsClassifier, make_digits_classifier
    >>> isinstance(make_digits_classifier(), DigitsClassifier)
    True
    """

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        with noticing_interrupts() as watch:
            super().partial_fit(X, y, classes, **fit_params)
        if watch.interrupted:
            raise TrainingInterrupted(f"training was interrupted after {len(self.history)} of {self.max_epochs} epochs")
        return self


class EpochProgressBar(Callback):
    """A skorch callback: one tqdm bar over the training epochs, with the last loss.

    Examples
    --------
    >>> from sklearn_id.models import EpochProgressBar, make_digits_classifier
    >>> net = make_digits_classifier(callbacks=[EpochProgressBar()])
    """

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc="training", unit="epoch")

    def on_epoch_end(self, net, **kwargs):
        self.bar_.update()
        self.bar_.set_postfix(loss=f"{net.history[-1, 'train_loss']:.3f}")

    def on_train_end(self, net, **kwargs):
        self.bar_.close()

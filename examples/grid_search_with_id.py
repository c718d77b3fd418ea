"""
Grid search scoring accuracy and ID together
=============================================

The ID of a network's last hidden layer is a label-free signal that can sit
beside accuracy in model selection. :func:`sklearn_id.make_id_scorer` turns
it into a scorer, so ``GridSearchCV`` (or ``cross_validate``) reports it for
every candidate and fold, here for a skorch CNN on scikit-learn's digits over
its width and training length. ``refit="accuracy"`` keeps accuracy as the
criterion; the ID is reported beside it (``greater_is_better=True`` gives it
with its natural sign, larger meaning a higher ID).

What the figure shows, honestly: training matters more than width. The
one-epoch networks have the lowest accuracy (0.27 and 0.52) and, for width
16, the highest ID (7.8); with more epochs accuracy rises and the ID falls
to 5.4 to 6.2. But the ID does not rank the candidates as accuracy does: the
width-16 network after 4 epochs has the lowest ID (5.4) and an accuracy of
0.87, below the 0.96 of the best candidate (width 16, 15 epochs, ID 5.8).
The spread over the three folds (0.3 to 0.5) is as large as most of these
differences, so here the ID is a diagnostic beside accuracy, not a
replacement for it.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_id import make_id_scorer
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import make_digits_classifier

images, labels = load_digit_images()
torch.manual_seed(0)
search = GridSearchCV(
    make_digits_classifier(),
    param_grid={"module__width": [4, 16], "max_epochs": [1, 4, 15]},
    scoring={"accuracy": "accuracy", "last_hidden_id": make_id_scorer("d1", greater_is_better=True)},
    refit="accuracy",
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
)
search.fit(images, labels)

results = pd.DataFrame(search.cv_results_)
columns = [
    "param_module__width",
    "param_max_epochs",
    "mean_test_accuracy",
    "mean_test_last_hidden_id",
    "std_test_last_hidden_id",
]
print(results[columns].round(3).to_string(index=False))
print(f"\nbest: {search.best_params_}, accuracy {search.best_score_:.3f}")

fig, ax = plt.subplots(figsize=(6, 4))
for width, group in results.groupby("param_module__width"):
    ax.errorbar(
        group["mean_test_last_hidden_id"],
        group["mean_test_accuracy"],
        xerr=group["std_test_last_hidden_id"],
        yerr=group["std_test_accuracy"],
        marker="o",
        linestyle="",
        capsize=3,
        label=f"width {width}",
    )
    for _, row in group.iterrows():
        ax.annotate(
            f"{row['param_max_epochs']} ep.",
            (row["mean_test_last_hidden_id"], row["mean_test_accuracy"]),
            fontsize=7,
            xytext=(5, 5),
            textcoords="offset points",
        )
ax.set(
    xlabel="ID of the last hidden layer (held-out folds)",
    ylabel="accuracy (held-out folds)",
    title="GridSearchCV over a skorch CNN on digits",
)
ax.legend(loc="lower left")
fig.tight_layout()
fig.savefig("grid_search_with_id.png", dpi=120)

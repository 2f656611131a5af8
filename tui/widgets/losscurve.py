"""Train and validation loss per epoch, with the validation metric on the right-hand axis.

The legend is a line of its own (`legend()`), so it never covers the first epochs of the curve."""

from __future__ import annotations

from rich.text import Text
from textual_plotext import PlotextPlot

from engine.training.curve import TrainingCurve

# (series key, label, axis side, colour: a name plotext and rich both know)
LINES = (("train_loss", "train loss", "left", "cyan"), ("val_loss", "val loss", "left", "magenta"),
         ("val_metric", "val acc (right)", "right", "green"))


def legend() -> Text:
    return Text("  ").join(Text.assemble(("━━ ", colour), label) for _, label, _, colour in LINES)


class LossCurve(PlotextPlot):
    epochs_drawn = 0

    def show(self, curve: TrainingCurve | None) -> None:
        plt = self.plt
        plt.clear_figure()
        epochs = curve.epochs if curve is not None else []
        self.epochs_drawn = len(epochs)
        if not epochs:
            plt.title("no epochs yet" if curve is not None else "no job selected")
        else:
            for key, _, side, colour in LINES:
                x, y = curve.series(key)
                if x:
                    plt.plot(x, y, yside=side, color=colour, marker="braille" if len(x) > 1 else "dot")
            plt.xlabel("epoch")
            total = curve.last.get("total_epochs")
            if total:
                plt.xlim(1, max(total, 2))
        self.refresh()

"""Train and validation loss per epoch, with the validation metric on the right-hand axis."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from engine.training.curve import TrainingCurve

LINES = (("train_loss", "train loss", "left"), ("val_loss", "val loss", "left"), ("val_metric", "val acc", "right"))


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
            for key, label, side in LINES:
                x, y = curve.series(key)
                if x:
                    plt.plot(x, y, label=label, yside=side, marker="braille" if len(x) > 1 else "dot")
            plt.xlabel("epoch")
            total = curve.last.get("total_epochs")
            if total:
                plt.xlim(1, max(total, 2))
        self.refresh()

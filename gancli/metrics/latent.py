"""How much of the data's classes an encoder's codes keep: the measures of the BiGAN and AAE papers.

- `nearest_neighbour_accuracy`: each test code takes the label of its nearest training code (Euclidean),
  BiGAN's "1NN" on permutation-invariant MNIST;
- `cluster_error`: each cluster takes the label most of its training members have, then the test error of
  that labelling, AAE's unsupervised clustering error;
- `confident_labels`: the rule the AAE paper's text gives for that mapping instead: each cluster takes the
  label of the one sample whose probability of that cluster is highest.
"""

from __future__ import annotations

import torch


def nearest_neighbour_accuracy(
    train_z: torch.Tensor, train_y: torch.Tensor, test_z: torch.Tensor, test_y: torch.Tensor, chunk: int = 1024
) -> float:
    """Fraction of test codes whose nearest training code (L2) has the same label."""
    train_z, test_z = train_z.float().flatten(1), test_z.float().flatten(1)
    hits = 0
    for i in range(0, len(test_z), chunk):
        nearest = torch.cdist(test_z[i : i + chunk], train_z).argmin(1)
        hits += (train_y[nearest] == test_y[i : i + chunk]).sum().item()
    return hits / len(test_z)


def majority_labels(clusters: torch.Tensor, labels: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """(n_clusters,) the most common label among each cluster's members (−1 for an empty cluster)."""
    n_labels = int(labels.max()) + 1
    counts = torch.zeros(n_clusters, n_labels, dtype=torch.long)
    counts.index_put_((clusters.long(), labels.long()), torch.ones(len(labels), dtype=torch.long), accumulate=True)
    best = counts.argmax(1)
    return torch.where(counts.sum(1) > 0, best, torch.full_like(best, -1))


def cluster_error(
    train_clusters: torch.Tensor,
    train_y: torch.Tensor,
    test_clusters: torch.Tensor,
    test_y: torch.Tensor,
    n_clusters: int,
) -> float:
    """Test error when each cluster predicts the majority label of its training members."""
    mapping = majority_labels(train_clusters, train_y, n_clusters)
    return (mapping[test_clusters.long()] != test_y).float().mean().item()


def confident_labels(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(K,) for each cluster k, the label of the sample with the highest q(y = k | x) among probs (N, K)."""
    return labels[probs.argmax(0)]

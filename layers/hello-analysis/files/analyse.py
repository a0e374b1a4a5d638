"""A stand-in analysis: fill a histogram of a deterministic sample and print its counts."""

import random


def histogram(values, edges):
    counts = [0] * (len(edges) - 1)
    for value in values:
        for i in range(len(edges) - 1):
            if edges[i] <= value < edges[i + 1]:
                counts[i] += 1
                break
    return counts


if __name__ == "__main__":
    rng = random.Random(42)
    sample = [rng.gauss(0.0, 1.0) for _ in range(1000)]
    print(histogram(sample, [-3, -2, -1, 0, 1, 2, 3]))

"""A small CNN learns Fashion-MNIST with loom: the PyTorch workflow (Module, DataLoader, SGD, schedules).

Data: the IDX files of Debian's `dataset-fashion-mnist` package (60,000 training and 10,000 test images, 28x28).
Two conv blocks with BatchNorm, then two linear layers; SGD with Nesterov momentum and a one-cycle-style
cosine schedule. Prints the loss as it trains and the accuracy on the 10,000 test images.
Run: python examples/python/train_fashion_mnist.py [--epochs N] [--batch-size B] [--lr LR]
"""
import argparse
import time

import loom
import loom.nn as nn
import loom.nn.functional as F
from loom.datasets import FashionMNIST
from loom.optim import SGD
from loom.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from loom.utils.data import DataLoader, TensorDataset

# Per-pixel statistics of the training images, the usual normalisation for this data set.
MEAN, STD = 0.2860, 0.3530


class SmallCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def as_tensors(split):
    """Images scaled and normalised to float32 [N, 1, 28, 28], labels int64 [N]."""
    images = (split.data.to(loom.float32).unsqueeze(1) / 255.0 - MEAN) / STD
    return images, split.targets


@loom.no_grad()
def accuracy(model, images, labels, batch_size=1000):
    model.eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start:start + batch_size])
        correct += (logits.argmax(1) == labels[start:start + batch_size]).sum().item()
    model.train()
    return correct / images.shape[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="passes over the 60,000 training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05, help="peak SGD learning rate")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="folder with the IDX files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    loom.manual_seed(args.seed)
    train_images, train_labels = as_tensors(FashionMNIST(args.data, train=True))
    test_images, test_labels = as_tensors(FashionMNIST(args.data, train=False))
    loader = DataLoader(TensorDataset(train_images, train_labels), batch_size=args.batch_size, shuffle=True,
                        drop_last=True, generator=loom.Generator().manual_seed(args.seed))

    model = SmallCNN()
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total = args.epochs * len(loader)
    warmup = max(1, total // 20)
    scheduler = SequentialLR(optimizer, [LinearLR(optimizer, 0.1, total_iters=warmup),
                                         CosineAnnealingLR(optimizer, T_max=total - warmup)], milestones=[warmup])
    print(f"SmallCNN: {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"{train_images.shape[0]:,} training / {test_images.shape[0]:,} test images; "
          f"{loom.get_num_threads()} threads")

    start, step = time.perf_counter(), 0
    for epoch in range(args.epochs):
        running = 0.0
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item()
            step += 1
            if step % 100 == 0:
                print(f"epoch {epoch + 1} step {step:5d}/{total}  loss {running / 100:.4f}  "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
                running = 0.0
        print(f"epoch {epoch + 1}: test accuracy {accuracy(model, test_images, test_labels):.2%}", flush=True)
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

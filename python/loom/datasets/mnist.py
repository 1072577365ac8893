"""MNIST-format image datasets read by loom's C++ IDX reader (plain or gzip'd files)."""
import os

from loom import _C
from loom.utils.data import Dataset

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """Reads an IDX file (plain or gzip'd, detected by content) into a tensor of its dtype and shape.

    A missing or malformed file raises ValueError naming the file and the problem.
    """
    return _C._data.read_idx(os.fspath(path))


def write_idx(path, tensor, gzip=False):
    """Writes a uint8/int8/int16/int32/float32/float64 tensor as an IDX file (atomically)."""
    _C._data.write_idx(os.fspath(path), tensor, gzip)


class MNIST(Dataset):
    """MNIST-format images from `root`: {train,t10k}-{images-idx3,labels-idx1}-ubyte, each plain or with .gz.

    `.data` is a uint8 tensor [N, 28, 28], `.targets` int64 [N]; dataset[i] is (image, label) with
    `transform(image)` / `target_transform(label)` applied when given. The images and labels are read once.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]
    _package_hint = ""

    def __init__(self, root, train=True, transform=None, target_transform=None):
        self.root = os.fspath(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        prefix = "train" if train else "t10k"
        images = self._find(f"{prefix}-images-idx3-ubyte")
        labels = self._find(f"{prefix}-labels-idx1-ubyte")
        self.data = read_idx(images)
        targets = read_idx(labels)
        name = type(self).__name__
        if self.data.dim() != 3:
            raise ValueError(f"{name}: '{images}': expected images [N, rows, cols], got shape {tuple(self.data.shape)}")
        if targets.dim() != 1 or targets.shape[0] != self.data.shape[0]:
            raise ValueError(f"{name}: '{labels}' holds labels of shape {tuple(targets.shape)} but '{images}' holds "
                             f"{self.data.shape[0]} images")
        self.targets = targets.to(_C.int64)

    def _find(self, stem):
        for candidate in (stem, stem + ".gz"):
            path = os.path.join(self.root, candidate)
            if os.path.exists(path):
                return path
        msg = f"{type(self).__name__}: no '{stem}' or '{stem}.gz' in '{self.root}'"
        if self._package_hint and os.path.abspath(self.root) == FASHION_MNIST_DIR:
            msg += f" ({self._package_hint})"
        raise FileNotFoundError(msg)

    def __len__(self):
        return self.data.shape[0]

    def __getitem__(self, index):
        img, target = self.data[index], int(self.targets[index].item())
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self):
        return f"{type(self).__name__}(root='{self.root}', train={self.train}, n={len(self)})"


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): 60,000 training and 10,000 test images of 28x28 grey clothes in 10 classes.

    Reads the gzip'd IDX files of Debian's `dataset-fashion-mnist` package by default.
    """

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    _package_hint = "the Debian package 'dataset-fashion-mnist' provides it: apt-get install dataset-fashion-mnist"

    def __init__(self, root=FASHION_MNIST_DIR, train=True, transform=None, target_transform=None):
        super().__init__(root, train, transform, target_transform)

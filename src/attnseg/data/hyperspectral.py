"""Hyperspectral pixel classification data (Indian Pines) for HybridSN.

The HybridSN recipe: PCA of the spectral axis to 30 components (whitened, like the reference's
``sklearn.decomposition.PCA(whiten=True)``), a 25x25 zero-padded window around every labelled
pixel, labels 1..16 shifted to 0..15, and a stratified train/test cut of the labelled pixels.

Memory: all 10,249 labelled Indian Pines windows at 30x25x25 float32 are 770 MB, so
``PatchDataset`` cuts windows on the fly from the padded cube (2.5 MB) instead;
``extract_patches`` materialises them and refuses beyond ``max_bytes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnseg.data.samples import require_dir
from attnseg.errors import DataError, InputFileError

INDIAN_PINES_CLASSES = [
    "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
    "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
    "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
]  # fmt: skip
DEFAULT_MAX_BYTES = 512 * 1024**2


def _load_mat_array(path: Path, ndim: int) -> np.ndarray:
    """The one ``ndim``-dimensional array in a MATLAB file (variable names vary between copies)."""
    try:
        from scipy.io import loadmat
        from scipy.io.matlab import MatReadError
    except ImportError:  # pragma: no cover - scipy is in the train extra
        raise DataError(f"Reading {path} needs scipy (pip install 'attnseg[train]').") from None
    try:
        mat = loadmat(str(path))
    except (MatReadError, ValueError, OSError, TypeError) as e:
        raise InputFileError(f"{path} is not a readable MATLAB file ({e}).") from None
    arrays = {k: v for k, v in mat.items() if not k.startswith("__") and getattr(v, "ndim", 0) == ndim}
    if len(arrays) != 1:
        raise DataError(f"{path}: expected one {ndim}-D array, found variables {sorted(arrays) or 'none'}.")
    return next(iter(arrays.values()))


def _find(root: Path, patterns: Sequence[str]) -> Path | None:
    for pattern in patterns:
        hits = sorted(root.glob(pattern))
        if hits:
            return hits[0]
    return None


def load_indian_pines(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(cube HxWxB float32, gt HxW int64 with 0 = unlabelled, 1..16 = classes) from a folder
    holding ``Indian_pines_corrected.npy`` or ``.mat`` and ``Indian_pines_gt.mat`` (or ``.npy``)."""
    root = require_dir(Path(root), "Indian Pines folder")
    cube_path = _find(root, ["Indian_pines_corrected.npy", "Indian_pines_corrected.mat", "Indian_pines.mat"])
    gt_path = _find(root, ["Indian_pines_gt.npy", "Indian_pines_gt.mat"])
    if cube_path is None or gt_path is None:
        raise DataError(
            f"{root} needs Indian_pines_corrected.npy (or .mat) and Indian_pines_gt.mat; "
            f"found {', '.join(sorted(p.name for p in root.iterdir())) or 'nothing'}."
        )
    if cube_path.suffix == ".npy":
        try:
            cube = np.load(cube_path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InputFileError(f"{cube_path} is not a readable .npy array ({e}).") from None
    else:
        cube = _load_mat_array(cube_path, 3)
    gt = np.load(gt_path, allow_pickle=False) if gt_path.suffix == ".npy" else _load_mat_array(gt_path, 2)
    if cube.ndim != 3 or gt.ndim != 2 or cube.shape[:2] != gt.shape:
        raise DataError(
            f"Cube {cube_path.name} {cube.shape} and labels {gt_path.name} {gt.shape} do not match."
        )
    return cube.astype(np.float32), gt.astype(np.int64)


def pca_reduce(cube: np.ndarray, n: int = 30, whiten: bool = True) -> np.ndarray:
    """HxWxB -> HxWxn principal components (numpy SVD of the centred pixel spectra).

    Signs are fixed (largest |loading| positive) so the result is deterministic. ``whiten``
    scales each component to unit variance, as the HybridSN reference does.
    """
    if cube.ndim != 3:
        raise DataError(f"Expected an HxWxB cube, got shape {cube.shape}.")
    h, w, b = cube.shape
    if not 1 <= n <= b:
        raise DataError(f"Cannot keep {n} principal components of {b} bands.")
    x = cube.reshape(-1, b).astype(np.float64)
    x -= x.mean(axis=0)
    # SVD of the B x B scatter matrix (its singular values are those of x, squared): the same
    # components as an SVD of the N x B pixel matrix, at a fraction of the cost for N >> B.
    _, s2, vt = np.linalg.svd(x.T @ x)
    vt = vt[:n]
    signs = np.sign(vt[np.arange(n), np.abs(vt).argmax(axis=1)])
    vt *= signs[:, None]
    z = x @ vt.T
    if whiten:
        std = np.sqrt(s2[:n] / max(x.shape[0] - 1, 1))
        z /= np.where(std > 0, std, 1.0)
    return z.reshape(h, w, n).astype(np.float32)


def labelled_pixels(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coords (N, 2) int64 row/col, labels (N,) int64 0-based) of the pixels with gt > 0."""
    rows, cols = np.nonzero(gt > 0)
    coords = np.stack([rows, cols], axis=1).astype(np.int64)
    return coords, (gt[rows, cols] - 1).astype(np.int64)


def _check_patch(patch: int) -> int:
    if patch < 1 or patch % 2 == 0:
        raise DataError(f"Patch size must be a positive odd number (centred on the pixel), got {patch}.")
    return patch // 2


def pad_cube(cube: np.ndarray, patch: int) -> np.ndarray:
    """Zero-pad the spatial borders by ``patch // 2`` so every pixel has a full window."""
    m = _check_patch(patch)
    return np.pad(cube, ((m, m), (m, m), (0, 0))).astype(np.float32, copy=False)


def _window(padded: np.ndarray, r: int, c: int, patch: int) -> np.ndarray:
    """(1, B, p, p) window centred on original pixel (r, c)."""
    win = padded[r : r + patch, c : c + patch]  # padded offset cancels the half-width
    return np.ascontiguousarray(win.transpose(2, 0, 1))[None]


def extract_patches(
    cube: np.ndarray,
    gt: np.ndarray,
    patch: int = 25,
    indices: np.ndarray | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """X (N, 1, B, p, p) float32 windows and y (N,) int64 labels 0..K-1 of labelled pixels.

    ``indices`` picks a subset of the labelled pixels (in ``labelled_pixels`` order). Beyond
    ``max_bytes`` this raises: use ``PatchDataset`` to cut windows lazily instead.
    """
    if cube.shape[:2] != gt.shape:
        raise DataError(f"Cube {cube.shape} and labels {gt.shape} differ in size.")
    coords, labels = labelled_pixels(gt)
    if indices is not None:
        coords, labels = coords[indices], labels[indices]
    need = len(coords) * cube.shape[2] * patch * patch * 4
    if need > max_bytes:
        raise DataError(
            f"{len(coords)} patches of {cube.shape[2]}x{patch}x{patch} floats need "
            f"{need / 1024**2:.0f} MB (limit {max_bytes / 1024**2:.0f} MB): use PatchDataset, "
            "which cuts patches on the fly, or pass indices."
        )
    padded = pad_cube(cube, patch)
    x = np.empty((len(coords), 1, cube.shape[2], patch, patch), np.float32)
    for i, (r, c) in enumerate(coords):
        x[i] = _window(padded, int(r), int(c), patch)
    return x, labels


def split_pixels(y: np.ndarray, train_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train indices, test indices) into ``y``: each class contributes
    ``round(train_fraction * count)`` pixels to train, at least one to each side when it has two."""
    if not 0.0 < train_fraction < 1.0:
        raise DataError(f"train_fraction must be between 0 and 1, got {train_fraction}.")
    y = np.asarray(y)
    if y.size < 2:
        raise DataError(f"Cannot split {y.size} labelled pixels into train and test.")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        k = round(train_fraction * len(idx))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        train.append(idx[:k])
        test.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


class PatchDataset:
    """Map-style dataset of (window (1, B, p, p) float32, label int64) cut on demand.

    Holds only the padded cube, so it pickles cheaply into DataLoader workers.
    """

    def __init__(self, cube: np.ndarray, coords: np.ndarray, labels: np.ndarray, patch: int = 25):
        coords, labels = np.asarray(coords, np.int64), np.asarray(labels, np.int64)
        if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(labels):
            raise DataError(f"coords must be (N, 2) with N labels, got {coords.shape} and {labels.shape}.")
        if len(coords) == 0:
            raise DataError("PatchDataset has no pixels (empty split?).")
        h, w = cube.shape[:2]
        if coords.min() < 0 or coords[:, 0].max() >= h or coords[:, 1].max() >= w:
            raise DataError(f"Pixel coordinates fall outside the {h}x{w} cube.")
        self.padded = pad_cube(cube, patch)
        self.coords, self.labels, self.patch = coords, labels, patch
        self.bands = int(cube.shape[2])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.int64]:
        r, c = self.coords[i]
        return _window(self.padded, int(r), int(c), self.patch), self.labels[i]


@dataclass
class HyperspectralData:
    """A reduced cube with its labelled pixels cut into train / test."""

    cube: np.ndarray  # H x W x bands, float32 (after PCA)
    gt: np.ndarray  # H x W, 0 = unlabelled
    coords: np.ndarray  # (N, 2) labelled pixels
    labels: np.ndarray  # (N,) 0-based
    train_idx: np.ndarray
    test_idx: np.ndarray
    classes: list[str]
    patch: int
    seed: int

    @property
    def bands(self) -> int:
        return int(self.cube.shape[2])

    def dataset(self, part: str) -> PatchDataset:
        """``PatchDataset`` of ``"train"``, ``"test"`` or ``"all"`` labelled pixels."""
        idx = {"train": self.train_idx, "test": self.test_idx}.get(part)
        if idx is None and part != "all":
            raise DataError(f"Unknown part {part!r}: use train, test or all.")
        sel = slice(None) if idx is None else idx
        return PatchDataset(self.cube, self.coords[sel], self.labels[sel], self.patch)


def open_indian_pines(
    root: str | Path, bands: int = 30, patch: int = 25, train_fraction: float = 0.3, seed: int = 0
) -> HyperspectralData:
    """Load, PCA-reduce, list labelled pixels and split them: the whole HybridSN input recipe."""
    cube, gt = load_indian_pines(root)
    reduced = pca_reduce(cube, bands)
    coords, labels = labelled_pixels(gt)
    train_idx, test_idx = split_pixels(labels, train_fraction, seed)
    n_classes = int(gt.max())
    classes = INDIAN_PINES_CLASSES if n_classes == 16 else [f"class_{i}" for i in range(n_classes)]
    return HyperspectralData(reduced, gt, coords, labels, train_idx, test_idx, list(classes), patch, seed)

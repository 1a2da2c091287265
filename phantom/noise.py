"""CT image formation: the scanner's blur and its correlated (ramp-filtered) quantum noise."""

from __future__ import annotations

import numpy as np
from scipy import fft

WATER_MU_PER_MM = 0.0193
REFERENCE_DIAMETER_MM = 300.0


def _frequencies(shape: tuple[int, int]) -> np.ndarray:
    """Radial spatial frequency (cycles/pixel) of an rfft2 of ``shape``."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.sqrt(fx * fx + fy * fy)


def noise_kernel(shape: tuple[int, int], cutoff: float) -> np.ndarray:
    """Amplitude filter for white noise giving a filtered-back-projection noise power spectrum.

    NPS(f) ~ |f| * window(f)^2 (ramp times a Hann apodisation up to ``cutoff`` cycles/pixel); the
    kernel is normalised so filtered unit-variance white noise keeps unit variance.
    """
    f = _frequencies(shape)
    window = np.where(f < cutoff, 0.5 * (1.0 + np.cos(np.pi * f / cutoff)), 0.0)
    k = np.sqrt(f) * window
    # power over the full (two-sided) spectrum: rfft columns 1..n/2-1 stand for two columns each
    weight = np.full(k.shape[1], 2.0)
    weight[0] = 1.0
    if shape[1] % 2 == 0:
        weight[-1] = 1.0
    power = float((k * k * weight[None, :]).sum()) / (shape[0] * shape[1])
    return (k / np.sqrt(power)).astype(np.float32)


def water_equivalent_diameter(hu: np.ndarray, pixel_area_mm2: float) -> np.ndarray:
    """Per slice (k,): the diameter of a water disc that attenuates like the slice (AAPM TG-220)."""
    sub = hu[:, ::4, ::4]  # a 1-in-16 sample is plenty for an area integral
    w = np.clip(sub / np.float32(1000.0) + np.float32(1.0), 0.0, None).sum(axis=(1, 2), dtype=np.float64)
    w *= pixel_area_mm2 * (hu.shape[1] * hu.shape[2]) / (sub.shape[1] * sub.shape[2])
    return 2.0 * np.sqrt(w / np.pi)


def add_ct_blur_and_noise(
    hu: np.ndarray,
    spacing_rc: tuple[float, float],
    sigma_hu: float,
    body: np.ndarray,
    rng: np.random.Generator,
    psf_mm: float = 0.45,
    cutoff_scale: float = 0.9,
    chunk: int = 16,
) -> None:
    """In place: blur each slice with a Gaussian PSF and add ramp-filtered noise.

    The noise standard deviation is ``sigma_hu`` for a patient of 300 mm water-equivalent diameter,
    grows with each slice's attenuation (half the dose-compensation a tube-current modulation would
    leave) and is ~25% higher in the body's centre than at its edge, as in a real scanner.
    """
    nk, nj, ni = hu.shape
    f = _frequencies((nj, ni))
    fy = np.fft.fftfreq(nj)[:, None] / spacing_rc[0]
    fx = np.fft.rfftfreq(ni)[None, :] / spacing_rc[1]
    psf = np.exp(-2.0 * (np.pi * psf_mm) ** 2 * (fx * fx + fy * fy)).astype(np.float32)
    cutoff = float(np.clip(0.5 * cutoff_scale / max(spacing_rc) * min(spacing_rc), 0.2, 0.5))
    kern = noise_kernel((nj, ni), cutoff)
    del f
    dwe = water_equivalent_diameter(hu, spacing_rc[0] * spacing_rc[1])
    slice_gain = np.exp(0.5 * 0.5 * WATER_MU_PER_MM * (dwe - REFERENCE_DIAMETER_MM))
    slice_gain = np.clip(slice_gain, 0.5, 2.5).astype(np.float32)
    yy = np.linspace(-1, 1, nj, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, ni, dtype=np.float32)[None, :]
    centre_gain = 1.0 + 0.25 * np.clip(1.0 - (xx * xx + yy * yy), 0.0, 1.0)
    for s in range(0, nk, chunk):
        block = hu[s : s + chunk]
        spec = fft.rfft2(block, workers=2)
        spec *= psf
        shape = spec.shape
        white = rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)
        white *= np.float32(np.sqrt(nj * ni / 2.0))
        noise = fft.irfft2(white * kern, s=(nj, ni), workers=2).astype(np.float32)
        noise *= (sigma_hu * slice_gain[s : s + chunk])[:, None, None]
        noise *= np.where(body[s : s + chunk], centre_gain, 0.85)
        block[...] = fft.irfft2(spec, s=(nj, ni), workers=2) + noise


def _upsampler(coords: np.ndarray, knots: np.ndarray, scale: float) -> np.ndarray:
    """(len(coords), len(knots)) Gaussian interpolation weights, rows normalised."""
    w = np.exp(-0.5 * ((coords[:, None] - knots[None, :]) / scale) ** 2)
    return (w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def smooth_field(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, scale_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """A smooth random field (k, j, i), unit-ish standard deviation, correlation length ~``scale_mm``.

    Random values on knots ``scale_mm`` apart, interpolated separably with Gaussian weights (three
    matrix products, so it costs about as much as one pass over the volume).
    """
    def knots(c: np.ndarray) -> np.ndarray:
        return np.arange(c.min() - scale_mm, c.max() + 2 * scale_mm, scale_mm)

    kx, ky, kz = knots(x), knots(y), knots(z)
    coarse = rng.standard_normal((len(kz), len(ky), len(kx))).astype(np.float32)
    wx, wy, wz = (_upsampler(c, k, 0.6 * scale_mm) for c, k in ((x, kx), (y, ky), (z, kz)))
    a = coarse @ wx.T  # (kz, ky, ni)
    a = np.matmul(wy[None], a)  # (kz, nj, ni)
    out = (wz @ a.reshape(len(kz), -1)).reshape(len(z), len(y), len(x))
    out /= max(float(out[::3, ::7, ::7].std()), 1e-6)
    return out

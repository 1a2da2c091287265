"""Synthetic chest phantoms (numpy + scipy only): CT volumes and DRR-style radiographs with nodules.

Public API::

    from phantom import ChestParams, NoduleSpec, make_chest_ct
    ph = make_chest_ct(ChestParams(n_slices=64, matrix=(256, 256), n_nodules=2, seed=7))
    ph.hu            # float32 (k, j, i) HU, slices inferior -> superior
    ph.nodule_mask   # bool (k, j, i)
    ph.nodules       # list[Nodule] with centre (voxel and mm), diameter, HU, kind
    rg = make_chest_radiograph(ph)          # or (params): a PA DRR of the same patient
    rg.image, rg.nodule_mask, rg.nodules    # float32 (rows, cols) in [0, 1], bool, RadiographNodule list
"""

from phantom.chest import make_chest_ct
from phantom.model import NODULE_KINDS, ChestParams, Nodule, NoduleKind, NoduleSpec, Phantom
from phantom.radiograph import Radiograph, RadiographNodule, make_chest_radiograph

__all__ = [
    "NODULE_KINDS",
    "ChestParams",
    "Nodule",
    "NoduleKind",
    "NoduleSpec",
    "Phantom",
    "Radiograph",
    "RadiographNodule",
    "make_chest_ct",
    "make_chest_radiograph",
]

"""The chest's gross anatomy: per-patient shape parameters and the tissues they paint on a grid.

Everything is defined in millimetres in the phantom frame (see :mod:`phantom.model`), so the same
seed gives the same patient on any grid (a CT of any matrix, a coarse grid for planning, the
projection grid of a radiograph).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom.grid import Grid, Tubes, mark_tubes, paint_tubes, subgrid

# Tissue values (HU), before noise.
AIR = -1000.0
FAT = -100.0
MUSCLE = 45.0
SKIN = 25.0
BLOOD = 40.0
LIVER = 60.0
SPLEEN_STOMACH = 42.0
CSF = 12.0
DISC = 85.0
CARTILAGE = 130.0


@dataclass(frozen=True)
class Anatomy:
    """One patient's body habitus and organ placement (mm), drawn from a random generator."""

    a: float  # body half-width
    b_ant: float  # body half-depth, anterior
    b_post: float  # body half-depth, posterior
    fat: float  # subcutaneous fat thickness
    muscle: float  # chest-wall muscle thickness (posterior is thicker)
    apex: float  # z of the lung apices
    left_dome_drop: float  # how much lower the left diaphragm dome is
    dome_curv: float  # diaphragm curvature (1/mm)
    heart_c: tuple[float, float, float]
    heart_r: tuple[float, float, float]
    heart_angle: float  # rotation of the heart's long axis in the axial plane (rad)
    lung_density: float  # parenchyma HU
    gravity_gradient: float  # extra HU at the most dependent (posterior) lung
    vert_height: float  # vertebral level height (mm)
    vert_phase: float
    rib_drop: tuple[float, ...]  # per rib pair, how far the anterior end sits below the head
    rib_radius: float
    cortical_hu: float
    marrow_hu: float
    stomach_gas: float  # radius of the fundus gas bubble (0: none)
    arch_below_apex: float
    outline: tuple[tuple[float, float], ...] = ()  # body contour harmonics (amplitude, phase) for m = 2, 3, 4
    fissure_slope: tuple[float, float] = (1.2, 1.2)  # rise of the major fissures (right, left) per mm backwards
    fissure_shift: tuple[float, float] = (0.0, 0.0)  # height offsets of the major fissures
    minor_fissure_z: float = 0.0  # height of the right minor fissure relative to the carina
    breast: float = 0.0  # breast size (0: none; ~1: medium)
    breast_z: float = 60.0  # height of the breasts' centres

    # -- derived sizes ---------------------------------------------------------------------
    @property
    def wall(self) -> float:
        """Lateral chest wall (fat + muscle + rib layer) thickness."""
        return self.fat + self.muscle + 10.0

    @property
    def cav_a(self) -> float:
        return self.a - self.wall

    @property
    def cav_ant(self) -> float:
        return self.b_ant - (0.8 * self.fat + self.muscle + 10.0)

    @property
    def cav_post(self) -> float:
        return self.b_post - (0.5 * self.fat + 1.6 * self.muscle + 10.0)

    @property
    def y_vertebra(self) -> float:
        """y of the vertebral body centre."""
        return self.cav_post - 38.0

    @property
    def z_arch(self) -> float:
        return self.apex - self.arch_below_apex

    @property
    def z_carina(self) -> float:
        return self.z_arch - 22.0

    @property
    def y_trachea(self) -> float:
        return self.y_vertebra - 52.0

    @property
    def z_bottom(self) -> float:
        """Lowest point of the lungs (the posterior costophrenic recesses)."""
        t = np.linspace(0.0, 2.0 * np.pi, 73)[:, None]
        s = np.linspace(0.0, 1.0, 11)[None, :]
        x = (self.cav_a * s * np.cos(t)).ravel()
        y = np.where(np.sin(t) < 0, self.cav_ant, self.cav_post) * s * np.sin(t)
        return float(self.diaphragm(x, y.ravel()).min())

    @property
    def lung_center_z(self) -> float:
        return 0.5 * (self.apex + self.z_bottom)

    @property
    def hila(self) -> dict[str, np.ndarray]:
        """Where the pulmonary arteries enter each lung."""
        return {
            "right": np.array([-0.36 * self.cav_a, -6.0, self.z_carina - 30.0]),
            "left": np.array([0.38 * self.cav_a, 2.0, self.z_carina - 22.0]),
        }

    @property
    def atria(self) -> dict[str, np.ndarray]:
        """Where the pulmonary veins leave the left atrium towards each lung."""
        hx, hy, hz = self.heart_c
        y = hy + 0.75 * self.heart_r[1]
        return {"right": np.array([hx - 45.0, y, hz + 10.0]), "left": np.array([hx + 15.0, y, hz + 15.0])}

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def draw(cls, rng: np.random.Generator) -> Anatomy:
        u = rng.uniform
        a = u(145.0, 171.0)
        b_ant = u(98.0, 122.0)
        apex = u(200.0, 235.0)
        arch_below_apex = u(68.0, 85.0)
        z_carina = apex - arch_below_apex - 22.0
        hr = (u(58.0, 70.0), u(42.0, 50.0), u(48.0, 56.0))
        return cls(
            a=a,
            b_ant=b_ant,
            b_post=b_ant + u(5.0, 15.0),
            fat=u(4.0, 24.0),
            muscle=u(6.0, 12.0),
            apex=apex,
            left_dome_drop=u(8.0, 25.0),
            dome_curv=u(0.0045, 0.007),
            heart_c=(u(18.0, 32.0), -u(5.0, 20.0), min(u(32.0, 46.0), z_carina - 42.0 - hr[2])),
            heart_r=hr,
            heart_angle=u(0.45, 0.75),
            lung_density=u(-880.0, -820.0),
            gravity_gradient=u(20.0, 70.0),
            vert_height=u(23.0, 27.0),
            vert_phase=u(0.0, 27.0),
            rib_drop=tuple(u(60.0, 100.0) for _ in range(12)),
            rib_radius=u(4.0, 5.2),
            cortical_hu=u(750.0, 1000.0),
            marrow_hu=u(180.0, 320.0),
            stomach_gas=u(15.0, 35.0) if rng.random() < 0.6 else 0.0,
            arch_below_apex=arch_below_apex,
            outline=tuple((u(-0.035, 0.035), u(0.0, 2 * np.pi)) for _ in range(3)),
            fissure_slope=(u(0.9, 1.5), u(0.9, 1.5)),
            fissure_shift=(u(-15.0, 15.0), u(-15.0, 15.0)),
            minor_fissure_z=u(-45.0, -25.0),
            breast=u(0.6, 1.25) if rng.random() < 0.5 else 0.0,
            breast_z=u(30.0, 70.0),
        )

    # -- analytic pieces ---------------------------------------------------------------------
    def body_halfwidth(self, z: np.ndarray) -> np.ndarray:
        """Body half-width narrowing from the shoulders to the neck above the apices."""
        t = np.clip((z - (self.apex + 15.0)) / 45.0, 0.0, 1.0)
        return self.a * (1.0 - 0.5 * t * t * (3 - 2 * t))

    def diaphragm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """z of the diaphragm surface: two domes, the left one lower, falling to the recesses."""
        c = self.dome_curv
        y0 = -0.15 * self.cav_ant  # the domes peak a little anterior of the middle
        yy = (y - y0) * 0.8
        back = 0.0025 * np.maximum(y - y0, 0.0) ** 2  # deep posterior costophrenic recesses
        right = -c * ((x + 0.42 * self.cav_a) ** 2 + yy**2)
        left = -self.left_dome_drop - c * ((x - 0.42 * self.cav_a) ** 2 + yy**2)
        return np.maximum(right, left) - back

    def great_vessels(self) -> dict[str, Tubes]:
        """Mediastinal tubes: aorta, pulmonary arteries, SVC, trachea and main bronchi, oesophagus."""
        za, yv, yt = self.z_arch, self.y_vertebra, self.y_trachea
        hx, hy, hz = self.heart_c
        top = self.apex + 80.0
        hr, hl = self.hila["right"], self.hila["left"]
        aorta = Tubes.polyline(
            [
                [hx - 30.0, hy - 5.0, hz + 30.0],
                [-10.0, -25.0, za - 30.0],
                [-4.0, -16.0, za - 2.0],
                [10.0, yt + 4.0, za + 6.0],
                [24.0, yv - 40.0, za - 6.0],
                [24.0, yv - 30.0, za - 40.0],
                [18.0, yv - 28.0, -120.0],
            ],
            [14.5, 14.5, 13.5, 13.0, 12.0, 11.5, 11.0],
        )
        pulmonary = Tubes.polyline(
            [[hx - 5.0, hy - 30.0, hz + 35.0], [12.0, -22.0, self.z_carina - 12.0]], [13.0, 12.5]
        ).concat(
            Tubes.polyline([[12.0, -22.0, self.z_carina - 12.0], [-20.0, hr[1] - 8.0, hr[2] + 4.0], hr], [10.0, 9.5, 8.5])
        ).concat(
            Tubes.polyline([[12.0, -22.0, self.z_carina - 12.0], [30.0, hl[1] - 6.0, hl[2] + 8.0], hl], [10.0, 9.5, 8.5])
        )
        svc = Tubes.polyline([[-30.0, -22.0, top - 40.0], [-28.0, -22.0, za], [-24.0, hy - 10.0, hz + 35.0]], 9.0)
        supra = Tubes.polyline(  # brachiocephalic / carotid / subclavian trunk, leaving the arch
            [[-2.0, -18.0, za + 6.0], [-12.0, -20.0, za + 45.0], [-18.0, -18.0, top]], 6.5
        ).concat(Tubes.polyline([[14.0, yt + 2.0, za + 8.0], [18.0, yt - 2.0, za + 45.0], [22.0, yt - 4.0, top]], 5.5))
        trachea = Tubes.polyline([[0.0, yt - 6.0, top], [0.0, yt, self.z_carina]], 9.0)
        bronchi = Tubes.polyline(
            [[0.0, yt, self.z_carina], [-0.25 * self.cav_a, yt + 8.0, self.z_carina - 22.0]], [7.5, 6.5]
        ).concat(Tubes.polyline([[0.0, yt, self.z_carina], [0.27 * self.cav_a, yt + 2.0, self.z_carina - 32.0]], [7.0, 6.0]))
        oesophagus = Tubes.polyline([[3.0, yv - 30.0, top], [8.0, yv - 34.0, za - 40.0], [15.0, yv - 40.0, -40.0]], 7.5)
        return {
            "aorta": aorta,
            "pulmonary": pulmonary,
            "svc": svc,
            "supra": supra,
            "trachea": trachea,
            "bronchi": bronchi,
            "oesophagus": oesophagus,
        }

    # -- region masks on a grid -----------------------------------------------------------------
    def regions(self, grid: Grid, vessels: dict[str, Tubes] | None = None) -> dict[str, np.ndarray]:
        """Bool masks of the main compartments on ``grid``: body, muscle, cavity, lung, heart...

        Every shape is separable into a 2-D (y, x) or 1-D term and a per-slice term, so each mask
        costs one comparison over the volume.
        """
        vessels = vessels if vessels is not None else self.great_vessels()
        x, y, z = grid.x.astype(np.float64), grid.y.astype(np.float64), grid.z.astype(np.float64)
        X2, Y2 = x[None, :], y[:, None]
        aw = self.body_halfwidth(z)

        # a slightly irregular body contour: the radius scaled by low harmonics of the angle
        theta = np.arctan2(Y2, X2)
        scale = 1.0 + sum(a * np.cos((m + 2) * theta + ph) for m, (a, ph) in enumerate(self.outline))
        xs, ys = np.abs(X2) / scale, Y2 / scale

        widths, which = np.unique(np.round(aw, 3), return_inverse=True)  # few distinct widths (the neck)

        def superellipse(da: float, db_ant: float, db_post: float, ex: float, ey_post: float) -> np.ndarray:
            """|x|^ex / (aw(z)-da)^ex + |y/b|^ey <= 1 on the modulated contour: one 2-D mask per width."""
            yb = np.where(ys < 0, ys / (self.b_ant - db_ant), ys / (self.b_post - db_post))
            rest = 1.0 - np.abs(yb) ** np.where(ys < 0, 2.1, ey_post)  # (j, i)
            lhs = xs**ex
            planes = np.stack([lhs <= rest * max(w - da, 1.0) ** ex for w in widths])
            return planes[which.ravel()]

        body = superellipse(0.0, 0.0, 0.0, 2.3, 3.2)
        skin_in = superellipse(2.0, 2.0, 2.0, 2.3, 3.2)
        muscle = superellipse(self.fat, 0.8 * self.fat, 0.5 * self.fat, 2.2, 3.0) & body
        # a thin intermuscular fat plane (pectoral / serratus from the deeper layer), front and sides
        plane_d = self.fat + 0.45 * self.muscle
        fat_plane = superellipse(plane_d, 0.8 * self.fat + 0.45 * self.muscle, plane_d, 2.2, 3.0)
        fat_plane &= ~superellipse(plane_d + 1.5, 0.8 * self.fat + 0.45 * self.muscle + 1.5, plane_d + 1.5, 2.2, 3.0)
        fat_plane &= (Y2 < 0.3 * self.b_post)[None]
        breast, gland, nipple = self.breasts(grid)
        if self.breast > 0:
            body = body | breast | nipple
            skin_in = skin_in | breast
        # Thoracic cavity (inside the ribs), slightly wider towards the base.
        widen = 0.9 + 0.2 * np.clip((self.apex - 60.0 - z) / 220.0, 0.0, 1.0) ** 0.8
        ca = np.minimum(self.cav_a * widen, aw - self.fat - self.muscle - 10.0)
        cy = np.where(y < 0, y / self.cav_ant, y / self.cav_post)
        yv = self.y_vertebra
        spine_block = ((np.abs(X2) < 25.0) & (Y2 > yv + 6.0)) | ((X2 / 21.0) ** 2 + ((Y2 - yv) / 18.5) ** 2 <= 1.0)
        cav_lim = (1.0 - cy**2)[None, :] * (ca**2)[:, None]
        cavity = ((x**2)[None, None, :] <= cav_lim[:, :, None]) & ~spine_block[None]
        above = z[:, None, None] > self.diaphragm(X2, Y2)[None]
        # Mediastinum: a band between the lungs, narrow anteriorly, plus the heart and great vessels.
        half_y = 8.0 + 11.0 / (1.0 + np.exp(-(y + 0.45 * self.cav_ant) / 8.0))
        half_z = 10.0 * np.clip((z - self.apex + 60.0) / 50.0, 0.0, 1.0) + 3.0 * np.sin(z / 37.0 + self.vert_phase)
        mediastinum = (np.abs(X2 - 3.0) - half_y[:, None])[None] < half_z[:, None, None]
        heart = self.heart_mask(grid, scale=1.0) & above
        pericardium = self.heart_mask(grid, scale=1.13)
        vessel_zone = np.zeros(grid.shape, dtype=bool)
        for name in ("aorta", "pulmonary", "svc", "supra", "trachea", "oesophagus"):
            mark_tubes(grid, vessel_zone, vessels[name], threshold=0.05, margin=5.0)
        mark_tubes(grid, vessel_zone, vessels["bronchi"], threshold=0.05, margin=2.0)
        zs = self.apex - 85.0
        dome = 1.0 - np.clip((z - zs) / 85.0, 0.0, None) ** 2
        q = np.minimum(
            *(((X2 - s * 0.5 * self.cav_a) / (0.55 * self.cav_a)) ** 2 for s in (-1.0, 1.0))
        ) + ((Y2 - 0.15 * self.cav_post) / (0.8 * self.cav_post)) ** 2
        apex_ok = q[None] <= dome[:, None, None]
        lung = cavity & above & ~mediastinum & ~pericardium & ~vessel_zone & apex_ok
        return {
            "body": body,
            "skin_in": skin_in,
            "muscle": muscle,
            "fat_plane": fat_plane,
            "breast": breast,
            "gland": gland,
            "nipple": nipple,
            "cavity": cavity,
            "above": above,
            "heart": heart,
            "lung": lung,
            "spine_block": np.broadcast_to(spine_block[None], grid.shape),
        }

    def breasts(self, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(breast, fibroglandular core, nipple) masks in front of the chest wall; empty when none."""
        shape = grid.shape
        if self.breast <= 0:
            empty = np.zeros(shape, dtype=bool)
            return empty, empty, empty
        x, y, z = grid.x.astype(np.float64), grid.y.astype(np.float64), grid.z.astype(np.float64)
        size = self.breast
        rx, ry, rz = 58.0 * size, 50.0 * size, 52.0 * size
        yc = -self.b_ant + 24.0  # the base lies deep in the subcutaneous fat, so the contour blends in
        masks = []
        for scale in (1.0, 0.6):
            q = np.minimum(*(((x[None, :] - s * 0.45 * self.a) / (rx * scale)) ** 2 for s in (-1.0, 1.0)))
            q = q + ((np.minimum(y[:, None] - yc, 0.0)) / (ry * scale)) ** 2 + (y[:, None] > yc) * 9.0
            masks.append(q[None] <= (1.0 - ((z - self.breast_z) / (rz * scale)) ** 2)[:, None, None])
        tip = yc - ry
        qn = np.minimum(*(((x[None, :] - s * 0.45 * self.a) / 6.0) ** 2 for s in (-1.0, 1.0))) + ((y[:, None] - tip) / 6.0) ** 2
        nipple = qn[None] <= (1.0 - ((z - self.breast_z) / 6.0) ** 2)[:, None, None]
        return masks[0], masks[1], nipple

    def heart_mask(self, grid: Grid, scale: float) -> np.ndarray:
        x, y, z = grid.x.astype(np.float64), grid.y.astype(np.float64), grid.z.astype(np.float64)
        hx, hy, hz = self.heart_c
        rl, rs, rz = (r * scale for r in self.heart_r)
        c, s = np.cos(self.heart_angle), np.sin(self.heart_angle)
        X2, Y2 = x[None, :] - hx, y[:, None] - hy
        u = X2 * c - Y2 * s  # long axis: to the left and anterior
        v = X2 * s + Y2 * c
        q = (u / rl) ** 2 + (v / rs) ** 2
        return q[None] <= (1.0 - ((z - hz) / rz) ** 2)[:, None, None]

    def parenchyma_hu(self, y: np.ndarray | float) -> np.ndarray:
        """Lung density with the gravity gradient of a supine patient (denser posteriorly)."""
        t = np.clip((np.asarray(y) + self.cav_ant) / (self.cav_ant + self.cav_post), 0.0, 1.0)
        return self.lung_density + self.gravity_gradient * t**2

    def fissures(self) -> list[tuple[str, np.ndarray, float, bool]]:
        """Interlobar fissure planes: (side, unit normal (x, y, z) with x taken as |x|, offset, minor?).

        A plane is ``n . (|x|, y, z) = offset``. Major fissures rise from the anterior diaphragm to
        the back of the upper chest; the right minor fissure is nearly horizontal, in front of the
        major one only.
        """
        out = []
        for idx, side in enumerate(("right", "left")):
            slope = self.fissure_slope[idx]
            z0 = self.z_carina - 40.0 + self.fissure_shift[idx]
            n = np.array([-0.08, -slope, 1.0])
            out.append((side, n / np.linalg.norm(n), float(z0 / np.linalg.norm(n)), False))
        n = np.array([0.0, -0.06, 1.0])
        out.append(("right", n / np.linalg.norm(n), float((self.z_carina + self.minor_fissure_z) / np.linalg.norm(n)), True))
        return out

    # -- painting ---------------------------------------------------------------------------------
    def paint_soft_tissue(
        self, grid: Grid, reg: dict[str, np.ndarray], vessels: dict[str, Tubes], blood: float = BLOOD
    ) -> np.ndarray:
        """HU of everything but the lungs' contents and the bones."""
        X, Y, Z = grid.xyz()
        hu = np.full(grid.shape, AIR, dtype=np.float32)
        hu[reg["body"]] = SKIN
        hu[reg["skin_in"] & reg["body"]] = FAT
        hu[reg["muscle"]] = MUSCLE
        hu[reg["fat_plane"] & reg["muscle"]] = FAT
        hu[reg["gland"]] = 15.0  # fibroglandular tissue in the breast fat
        hu[reg["nipple"]] = SKIN
        thorax = reg["cavity"] & reg["muscle"]
        hu[thorax] = FAT + 10.0  # mediastinal fat unless something else is painted
        abdomen = thorax & ~reg["above"]
        hu[abdomen & np.broadcast_to(X < 15.0, grid.shape)] = LIVER
        hu[abdomen & np.broadcast_to(X >= 15.0, grid.shape)] = SPLEEN_STOMACH
        if self.stomach_gas > 0:  # the fundus gas bubble (flat air-fluid level), within its own box
            gz = float(self.diaphragm(np.float32(0.42 * self.cav_a), np.float32(0.0))) - self.stomach_gas - 8.0
            r = 1.3 * self.stomach_gas
            cx = 0.42 * self.cav_a
            box = grid.index_box(np.array([cx - r, -10.0 - r, gz]), np.array([cx + r, -10.0 + r, gz + self.stomach_gas]))
            if box is not None:
                sub = subgrid(grid, box)
                x, y, z = sub.xyz()
                gas = ((x - cx) ** 2 + (y + 10.0) ** 2) / r**2 + ((z - gz) / self.stomach_gas) ** 2 <= 1.0
                view = hu[box]
                view[abdomen[box] & gas & (z > gz)] = AIR
        hu[reg["lung"]] = 0.0  # filled by the lung painter
        hu[reg["heart"] & thorax] = blood
        for name in ("aorta", "pulmonary", "svc", "supra"):
            paint_tubes(grid, hu, vessels[name], blood)
        paint_tubes(grid, hu, vessels["oesophagus"], MUSCLE)
        for name in ("trachea", "bronchi"):
            paint_tubes(grid, hu, vessels[name], MUSCLE - 15.0)
            paint_tubes(grid, hu, vessels[name].grown(-1.8), AIR)
        return hu

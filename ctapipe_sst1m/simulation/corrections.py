"""Charge corrections of SST-1M simulations, as a ctapipe MonitoringSource."""

import numpy as np
from astropy.table import Table
from ctapipe.core.traits import (
    Bool,
    Float,
    TelescopeParameter,
    Unicode,
)
from ctapipe.io import MonitoringSource
from ctapipe.io.monitoringtypes import MonitoringType

from ..instrument import camera_number

__all__ = ["SST1MSimulationCorrections", "PDE_CORRECTION_FACTORS"]

#: Photo-detection-efficiency correction per simulated quantum-efficiency table
#: (sim_telarray QUANTUM_EFFICIENCY file name without extension), per camera:
#: simulated charges are divided by it (SST-1M collaboration values).
PDE_CORRECTION_FACTORS = {
    1: {
        "qe_SST1M_5477_ave_TEL1_NSB136.0": 0.9656945022506267,
        "qe_SST1M_5477_ave_TEL1_NSB251.0": 0.9393873691700036,
    },
    2: {
        "qe_SST1M_5477_ave_TEL2_NSB177.0": 0.9891814057303215,
        "qe_SST1M_5477_ave_TEL2_NSB300.0": 0.9819055121768047,
    },
}


class SST1MSimulationCorrections(MonitoringSource):
    """
    Scale the charges of simulated SST-1M events: PDE correction and intensity correction.

    Select it in ctapipe-process with ``ProcessorTool.monitoring_source_list:
    [SST1MSimulationCorrections]`` (as ``sst1m_mc.yaml`` does); ctapipe calls it for
    every event before the CameraCalibrator, which multiplies the extracted charges by
    ``intensity_correction / pde_factor``. None of the data-only corrections apply to
    simulations.
    """

    apply_pde_correction = Bool(
        default_value=True,
        help="Divide simulated charges by the PDE correction factor of the simulated QE table.",
    ).tag(config=True)

    quantum_efficiency_table = TelescopeParameter(
        trait=Unicode(),
        default_value=[("type", "*", "")],
        help=(
            "Name of the simulated quantum-efficiency table per telescope (e.g."
            " 'qe_SST1M_5477_ave_TEL1_NSB136.0'), which selects the PDE factor;"
            " empty: pde_correction_factor."
        ),
    ).tag(config=True)

    pde_correction_factor = TelescopeParameter(
        trait=Float(min=0.0),
        default_value=1.0,
        help="PDE correction factor per telescope when no quantum_efficiency_table is given.",
    ).tag(config=True)

    intensity_correction = TelescopeParameter(
        trait=Float(min=0.0),
        default_value=1.0,
        help="Global scale of the charges per telescope.",
    ).tag(config=True)

    def __init__(self, subarray=None, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.metadata = dict(is_simulation=True)
        self._factor = {}

    @property
    def monitoring_types(self):
        return (MonitoringType.CAMERA_COEFFICIENTS,)

    def pde_factor(self, tel_id):
        """The PDE correction factor of a telescope (1 when the correction is off)."""
        if not self.apply_pde_correction:
            return 1.0
        table = self.quantum_efficiency_table.tel[tel_id]
        if not table:
            return self.pde_correction_factor.tel[tel_id]
        known = PDE_CORRECTION_FACTORS.get(camera_number(tel_id), {})
        if table not in known:
            raise ValueError(
                f"tel {tel_id}: no PDE correction factor for quantum-efficiency table"
                f" {table!r}; known: {sorted(known)}"
            )
        return known[table]

    def _coefficient_factor(self, tel_id):
        """Charge factor of a telescope, shape (1 gain, n_pixels), computed once."""
        if tel_id not in self._factor:
            n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
            factor = self.intensity_correction.tel[tel_id] / self.pde_factor(tel_id)
            self._factor[tel_id] = np.full((1, n_pixels), factor)
        return self._factor[tel_id]

    def get_values(self, monitoring_type, time, tel_id=None, **kwargs):
        """
        Camera coefficients of a telescope; the same at every time.

        Parameters
        ----------
        monitoring_type : ctapipe.io.MonitoringType
            Must be ``CAMERA_COEFFICIENTS``.
        time : astropy.time.Time or None
            Ignored: the corrections of a simulation do not change with time.
        tel_id : int
            Telescope id.

        Returns
        -------
        dict
            ``factor`` (shape (1, n_pixels)) and ``outlier_mask`` (all False).
        """
        if monitoring_type not in self.monitoring_types:
            raise KeyError(
                f"{monitoring_type} not available, only {self.monitoring_types}"
            )
        if tel_id is None:
            raise TypeError(f"tel_id is required for {monitoring_type.name}")
        factor = self._coefficient_factor(tel_id)
        return {"factor": factor, "outlier_mask": np.zeros_like(factor, dtype=bool)}

    def get_table(self, monitoring_type, tel_id=None, **kwargs):
        """
        Camera coefficients of a telescope as a one-row table (columns of `get_values`).

        Parameters
        ----------
        monitoring_type : ctapipe.io.MonitoringType
            Must be ``CAMERA_COEFFICIENTS``.
        tel_id : int
            Telescope id.

        Returns
        -------
        astropy.table.Table
        """
        values = self.get_values(monitoring_type, time=None, tel_id=tel_id)
        return Table({name: [value] for name, value in values.items()})

    def fill_monitoring_container(self, event):
        """Set ``coefficients.factor`` (and an empty outlier mask if none) for every telescope."""
        for tel_id in event.r1.tel:
            coefficients = event.monitoring.tel[tel_id].camera.coefficients
            coefficients.factor = self._coefficient_factor(tel_id)
            if coefficients.outlier_mask is None:
                coefficients.outlier_mask = np.zeros_like(
                    coefficients.factor, dtype=bool
                )

    def close(self):
        """Nothing to release."""

"""
The telescope set-ups of SST-1M IRFs and how their events are read from DL2 files.

An IRF describes one *set-up*: a telescope alone (``tel_021``, ``tel_022``, with the
mono models) or the two together (``stereo``, the stereo models on events seen by both).
A set-up fixes which DL2 columns hold the energy, the direction and the gammaness of an
event, and which events count: the same reading serves the simulated DL2 of the IRFs
(through ctapipe's ``DL2EventLoader``) and the DL2 of real data for DL3, so both apply
exactly the same selection.

* mono: the telescope-level predictions of the mono models
  (``mono_regressor_tel_energy`` …) of that telescope's events, read with
  ``TableLoader.read_telescope_events_chunked``;
* stereo: the subarray-level predictions of the stereo models (``stereo_regressor_energy``
  …) of events where both telescopes contributed to all three predictions.

Simulations number the telescopes 1 and 2, real data 21 and 22
(`ctapipe_sst1m.instrument.DATA_TEL_ID`); a set-up is named after the real telescope.
"""

from dataclasses import dataclass

from ..instrument import DATA_TEL_ID
from .model_sets import MODEL_KINDS, reconstructor_prefix

__all__ = ["SETUPS", "IrfSetup", "setup_by_name"]

#: the predicted quantities: (model kind, column suffix, name in ctapipe's IRF tables)
_PREDICTIONS = (
    ("regressor", "energy", "reco_energy"),
    ("disp", "alt", "reco_alt"),
    ("disp", "az", "reco_az"),
    ("classifier", "prediction", "gh_score"),
)


@dataclass(frozen=True)
class IrfSetup:
    """
    One telescope set-up of the IRFs.

    Attributes
    ----------
    name : str
        ``tel_021``, ``tel_022`` or ``stereo``.
    variant : str
        Model variant whose predictions are used (``mono`` or ``stereo``).
    data_tel_id : int or None
        Telescope of a mono set-up in real data (None for stereo).
    min_telescopes : int
        Telescopes that must have contributed to each of the three predictions.
    """

    name: str
    variant: str
    data_tel_id: int | None
    min_telescopes: int

    @property
    def telescope_level(self):
        """Whether the predictions are the telescope-level columns of one telescope."""
        return self.data_tel_id is not None

    @property
    def simulated_tel_id(self):
        """The telescope of a mono set-up in simulations (None for stereo)."""
        if self.data_tel_id is None:
            return None
        return {data: simulated for simulated, data in DATA_TEL_ID.items()}[
            self.data_tel_id
        ]

    def prefix(self, kind):
        """ctapipe prefix of the reconstructor of ``kind`` (regressor, disp, classifier)."""
        return reconstructor_prefix(self.variant, kind)

    def column(self, kind, suffix):
        """Name of a prediction column, e.g. ``mono_regressor_tel_energy``."""
        tel = "_tel" if self.telescope_level else ""
        return f"{self.prefix(kind)}{tel}_{suffix}"

    def columns_to_rename(self):
        """DL2 column → name in ctapipe's IRF event tables (``reco_energy`` …)."""
        renames = {
            self.column(kind, suffix): name for kind, suffix, name in _PREDICTIONS
        }
        renames["subarray_pointing_lat"] = "pointing_alt"
        renames["subarray_pointing_lon"] = "pointing_az"
        return renames

    def quality_criteria(self):
        """
        The event selection of the set-up as ctapipe ``QualityQuery`` criteria.

        Returns
        -------
        list of (str, str)
            The three predictions valid; for stereo, each made with at least
            `min_telescopes` telescopes.
        """
        criteria = [
            (f"valid {kind}", self.column(kind, "is_valid")) for kind in MODEL_KINDS
        ]
        if not self.telescope_level:
            criteria += [
                (
                    f"{kind} telescopes",
                    f"np.count_nonzero({self.prefix(kind)}_telescopes, axis=1)"
                    f" >= {self.min_telescopes}",
                )
                for kind in MODEL_KINDS
            ]
        return criteria

    def loader_config(self, tel_id):
        """
        Configuration of ctapipe's ``DL2EventLoader`` that reads the set-up's events.

        Parameters
        ----------
        tel_id : int or None
            Telescope to read (the simulated or the real id) for a mono set-up.

        Returns
        -------
        dict
            For ``traitlets.config.Config``: ``DL2EventLoader``,
            ``DL2EventPreprocessor``, ``DL2EventQualityQuery``.
        """
        loader = {}
        if self.telescope_level:
            loader = {
                "event_reader_function": "read_telescope_events_chunked",
                "event_reader_kwargs": {"telescopes": [int(tel_id)]},
            }
        return {
            "DL2EventLoader": loader,
            "DL2EventPreprocessor": {
                "energy_reconstructor": self.prefix("regressor"),
                "geometry_reconstructor": self.prefix("disp"),
                "gammaness_classifier": self.prefix("classifier"),
                "columns_to_rename": self.columns_to_rename(),
            },
            "DL2EventQualityQuery": {"quality_criteria": self.quality_criteria()},
        }


#: every set-up, by name
SETUPS = {
    setup.name: setup
    for setup in (
        IrfSetup("tel_021", "mono", 21, 1),
        IrfSetup("tel_022", "mono", 22, 1),
        IrfSetup("stereo", "stereo", None, 2),
    )
}


def setup_by_name(name):
    """The `IrfSetup` called ``name``; a ValueError lists the valid names."""
    try:
        return SETUPS[name]
    except KeyError:
        raise ValueError(
            f"unknown telescope set-up {name!r}: one of {', '.join(SETUPS)}"
        ) from None

"""The shipped configurations build the ctapipe components they configure."""

import json
import re

import numpy as np
import pytest
from conftest import PROJECT_DIR
from ctapipe.calib import CameraCalibrator
from ctapipe.core import Tool
from ctapipe.image import ImageProcessor
from ctapipe.reco import ShowerProcessor

from ctapipe_sst1m import ImageCleanerSST
from ctapipe_sst1m.instrument import sst1m_subarray


def load_config(path):
    tool = Tool()
    tool.load_config_file(path)
    return tool.config


@pytest.mark.parametrize(
    "name, tel_ids", [("data_config", (21, 22)), ("mc_config", (1, 2))]
)
def test_components_from_config(request, name, tel_ids):
    config = load_config(request.getfixturevalue(name))
    subarray = sst1m_subarray(tel_ids)
    calibrator = CameraCalibrator(subarray=subarray, config=config)
    assert (
        calibrator.image_extractors["LocalPeakWindowSum"].window_width.tel[tel_ids[0]]
        == 7
    )
    processor = ImageProcessor(subarray=subarray, config=config)
    assert isinstance(processor.clean, ImageCleanerSST)
    assert processor.use_telescope_frame is True
    # the highest NSB set of telescope 1/21 has picture threshold 8 p.e.
    parameters = processor.clean.parameters_for(tel_ids[0], 1e6)
    assert parameters.picture_threshold_pe == 8
    assert processor.clean.parameters_for(tel_ids[0], 0).picture_threshold_pe == 7
    ShowerProcessor(subarray=subarray, config=config)


def _seed_configs(shared_dir):
    text = (shared_dir / "seed/sst1m_analysis_workflow.txt").read_text()
    mc = text[text.index("Default config file for MC:") :]
    mc = mc[mc.index("{") : mc.index("Default config file for data:")]
    data = text[text.index("Default config file for data:") :]
    data = data[data.index("{") : data.index("R0 to DL1")]
    return {"mc": json.loads(mc), "data": json.loads(data)}


def _key_paths(config, prefix=""):
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("SWATEventIDs",):
            yield from _key_paths(value, path + ".")
        else:
            yield path


def test_every_seed_key_has_a_home(shared_dir):
    """docs/configuration.md maps every key of both seed configurations."""
    documented = set(
        re.findall(r"`([^`]+)`", (PROJECT_DIR / "docs/configuration.md").read_text())
    )
    prefixes = {entry[:-1] for entry in documented if entry.endswith(".*")}

    def is_documented(path):
        return path in documented or any(path.startswith(prefix) for prefix in prefixes)

    missing = {
        kind: sorted(path for path in _key_paths(config) if not is_documented(path))
        for kind, config in _seed_configs(shared_dir).items()
    }
    assert missing == {"mc": [], "data": []}


def test_simulation_corrections(mc_config):
    from ctapipe.containers import ArrayEventContainer, R1CameraContainer
    from ctapipe.io import MonitoringSource

    from ctapipe_sst1m import SST1MSimulationCorrections

    assert "SST1MSimulationCorrections" in MonitoringSource.non_abstract_subclasses()
    config = load_config(mc_config)
    assert config.ProcessorTool.monitoring_source_list == ["SST1MSimulationCorrections"]
    config.SST1MSimulationCorrections.quantum_efficiency_table = [
        ("id", 1, "qe_SST1M_5477_ave_TEL1_NSB136.0"),
        ("id", 2, ""),
    ]
    config.SST1MSimulationCorrections.pde_correction_factor = 0.5
    subarray = sst1m_subarray((1, 2))
    corrections = MonitoringSource.from_name(
        "SST1MSimulationCorrections", subarray=subarray, config=config
    )
    event = ArrayEventContainer()
    for tel_id in (1, 2):
        event.r1.tel[tel_id] = R1CameraContainer(waveform=np.zeros((1, 1296, 50)))
    corrections.fill_monitoring_container(event)
    factor_1 = event.monitoring.tel[1].camera.coefficients.factor
    assert factor_1.shape == (1, 1296)
    assert factor_1[0, 0] == pytest.approx(1 / 0.9656945022506267)
    assert event.monitoring.tel[2].camera.coefficients.factor[0, 0] == pytest.approx(
        2.0
    )
    assert not event.monitoring.tel[1].camera.coefficients.outlier_mask.any()

    config.SST1MSimulationCorrections.quantum_efficiency_table = "qe_unknown"
    unknown = SST1MSimulationCorrections(subarray=subarray, config=config)
    with pytest.raises(ValueError, match="qe_unknown"):
        unknown.fill_monitoring_container(event)

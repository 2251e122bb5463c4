"""
Demo: real SST-1M raw data to DL1 with stock ctapipe-process, and a picture of it.

1. ``sst1m-quickstart`` writes sst1m.yaml and sst1m_mc.yaml into the output directory;
2. ``ctapipe-process --config sst1m.yaml`` turns the real raw files shipped with
   protozfits into DL1 (2018 tel 22 file; 2017 camera file);
3. a PNG per file shows the brightest calibrated images with their cleaning masks;
4. ``sst1m-process`` (ctapipe-process plus pointing and NSB monitoring) processes the
   same files and a PNG per file shows the pedestal and NSB diagnostics.

Run with ``make demo`` or ``python examples/demo.py --output-dir demo_output``.
"""

import argparse
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from ctapipe.instrument import SubarrayDescription  # noqa: E402
from ctapipe.io import read_table  # noqa: E402
from ctapipe.visualization import CameraDisplay  # noqa: E402

from ctapipe_sst1m.plotting import plot_nsb_diagnostics  # noqa: E402

RAW_FILES = {
    # renamed to the SST-1M convention so that obs_id = date + run: (file, telescope)
    "SST1M2_20180822_0001": ("example_SST1M_20180822.fits.fz", 22),
    "SST1M1_20171031_0010": ("example_100evts.fits.fz", 21),
}
#: the example files carry no TARGET keyword: the Crab, as in the reference's processing
CRAB = ["--SST1MEventSource.pointing_ra_deg=83.6333", "--SST1MEventSource.pointing_dec_deg=22.0145"]


def run(*command, cwd):
    """Run a console script of this environment in ``cwd``, stop on failure."""
    executable = Path(sys.executable).parent / command[0]
    print("$", " ".join([command[0], *map(str, command[1:])]))
    subprocess.run([str(executable), *map(str, command[1:])], check=True, cwd=cwd)


def plot_brightest_images(dl1_path, png_path, n_images=6):
    """Plot the calibrated images of the brightest events with their cleaning masks."""
    subarray = SubarrayDescription.from_hdf(dl1_path)
    tel_id = next(
        t for t in subarray.tel if f"/dl1/event/telescope/images/tel_{t:03d}" in _nodes(dl1_path)
    )
    images = read_table(dl1_path, f"/dl1/event/telescope/images/tel_{tel_id:03d}")
    order = np.argsort([-np.sort(image)[-20:].sum() for image in images["image"]])
    geometry = subarray.tel[tel_id].camera.geometry

    fig, axes = plt.subplots(2, n_images // 2, figsize=(5 * n_images // 2, 9), layout="constrained")
    for ax, row in zip(axes.ravel(), images[order[:n_images]]):
        display = CameraDisplay(geometry, image=row["image"], ax=ax, title="")
        display.add_colorbar(ax=ax, label="charge [p.e.]")
        display.highlight_pixels(row["image_mask"], color="cyan", linewidth=1.2)
        ax.set_title(
            f"tel {tel_id}  event {row['event_id']}\n"
            f"{np.count_nonzero(row['image_mask'])} pixels after cleaning (cyan)"
        )
    fig.suptitle(f"{Path(dl1_path).name}: calibrated images (p.e.)")
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def _nodes(path):
    import tables

    with tables.open_file(path) as h5:
        return {node._v_pathname for node in h5.walk_nodes("/")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--output-dir", type=Path, default=Path("demo_output"))
    args = parser.parse_args()
    output_dir = args.output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)

    run("sst1m-quickstart", output_dir, "--overwrite", cwd=output_dir)
    resources = Path(str(files("protozfits") / "tests" / "resources"))
    outputs = []
    for name, (raw_name, tel_id) in RAW_FILES.items():
        raw = output_dir / f"{name}.fits.fz"
        raw.unlink(missing_ok=True)
        raw.symlink_to(resources / raw_name)
        config = ["--config", output_dir / "sst1m.yaml", "--overwrite", "--log-level", "WARN", *CRAB]
        dl1 = output_dir / f"{name}_dl1.h5"
        run("ctapipe-process", "--input", raw, "--output", dl1, *config, cwd=output_dir)
        png = output_dir / f"{name}_images.png"
        plot_brightest_images(dl1, png)

        monitored = output_dir / f"{name}_dl1_sst1m.h5"
        run("sst1m-process", "--input", raw, "--output", monitored, *config, cwd=output_dir)
        diagnostics = output_dir / f"{name}_nsb.png"
        plot_nsb_diagnostics(monitored, diagnostics, tel_id)
        outputs += [dl1, png, monitored, diagnostics]

    print("\nDemo finished. Outputs:")
    for path in outputs:
        print(f"  {path}")


if __name__ == "__main__":
    main()

"""Outputs that appear under their final name only when they are complete."""

import errno
import gzip
import io
import os
import secrets
import shutil
from pathlib import Path

__all__ = [
    "AtomicOutput",
    "DiskFullError",
    "TEMPORARY_SUFFIX",
    "check_not_an_input",
    "disk_full_error",
    "write_fits",
]

#: the temporary names of outputs being written end with this
TEMPORARY_SUFFIX = ".part"
#: a file system with less free space than this is taken as full
FULL_DISK_BYTES = 64 * 1024


class DiskFullError(OSError):
    """Writing an output failed because its file system is full (the message names it)."""


def _free_bytes(path):
    """Free bytes on the file system of ``path`` (or of its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def disk_full_error(error, path):
    """
    The `DiskFullError` behind a write error, or None if the file system is not full.

    HDF5 and astropy do not always pass on ``errno.ENOSPC``: a write error counts as a
    full disk if its chain carries ENOSPC or "No space left on device", or if the file
    system of ``path`` has less than 64 kB free after it.

    Parameters
    ----------
    error : BaseException
        The error raised while writing.
    path : str or os.PathLike
        The output being written.
    """
    chain = error
    while chain is not None:
        if getattr(chain, "errno", None) == errno.ENOSPC or (
            "No space left on device" in str(chain)
        ):
            break
        chain = chain.__cause__ or chain.__context__
    free = _free_bytes(path)
    if chain is None and free >= FULL_DISK_BYTES:
        return None
    return DiskFullError(
        errno.ENOSPC,
        f"No space left on device: writing {path} failed ({free} bytes free on its"
        " file system); nothing was written under that name",
    )


def check_not_an_input(path, inputs):
    """
    Refuse an output path that is one of the inputs (``--overwrite`` or not).

    Parameters
    ----------
    path : str or os.PathLike
        The output.
    inputs : iterable of str or os.PathLike
        The input files; ``None`` entries are ignored.

    Raises
    ------
    ValueError
        If ``path`` resolves to an input, naming both.
    """
    output = Path(path).resolve()
    for input_path in inputs:
        if input_path is not None and Path(input_path).resolve() == output:
            raise ValueError(
                f"output {path} is the input {input_path}: refusing to overwrite an input"
            )


class AtomicOutput:
    """
    A file or directory written under a temporary name and renamed when complete.

    The content goes to `temporary`, a name next to the final `path` that is unique to
    this output and this process (``<name>.<pid>.<random>.part``), so that two runs
    writing the same output never touch each other's file. `commit` renames it to
    `path` in one step (``os.replace`` within one directory); `discard`, or leaving a
    ``with`` block without a commit, deletes it. A file that exists under the final
    name is refused unless ``overwrite`` is given, and is replaced only by the commit.

    Parameters
    ----------
    path : str or os.PathLike
        The final name of the output.
    overwrite : bool
        Replace an existing output when committing.
    directory : bool
        The output is a directory (created empty under the temporary name); an
        existing directory is removed just before the rename.
    inputs : iterable of str or os.PathLike
        The inputs of the step: an output that is one of them is refused.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If ``path`` is one of ``inputs``.
    """

    def __init__(self, path, overwrite=False, directory=False, inputs=()):
        self.path = Path(path)
        check_not_an_input(self.path, inputs)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists, use --overwrite to replace it")
        self.directory = directory
        unique = f"{os.getpid()}.{secrets.token_hex(4)}"
        self.temporary = self.path.with_name(
            f"{self.path.name}.{unique}{TEMPORARY_SUFFIX}"
        )
        if directory:
            self.temporary.mkdir(parents=True)
        self.committed = False

    def commit(self):
        """
        Rename the complete output to its final name.

        Raises
        ------
        DiskFullError
            If the file system is full: a writer (HDF5) may have lost data without an
            error; the temporary output is deleted.
        """
        if _free_bytes(self.temporary) < FULL_DISK_BYTES:
            self.discard()
            raise disk_full_error(OSError(errno.ENOSPC, "file system full"), self.path)
        if self.directory and self.path.is_dir():
            shutil.rmtree(self.path)
        os.replace(self.temporary, self.path)
        self.committed = True

    def discard(self):
        """Delete the temporary output (nothing happens after a commit)."""
        if self.committed:
            return
        if self.temporary.is_dir():
            shutil.rmtree(self.temporary, ignore_errors=True)
        else:
            self.temporary.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.discard()


def write_fits(hdulist, path, overwrite=False, inputs=()):
    """
    Write a FITS file atomically, gzip-compressed when ``path`` ends in ``.gz``.

    Parameters
    ----------
    hdulist : astropy.io.fits.HDUList
    path : str or os.PathLike
    overwrite : bool
        Replace an existing file.
    inputs : iterable of str or os.PathLike
        Inputs of the step (an output that is one of them is refused).
    """
    with AtomicOutput(path, overwrite=overwrite, inputs=inputs) as output:
        if Path(path).suffix == ".gz":
            # the temporary name does not end in .gz, so compress here
            buffer = io.BytesIO()
            hdulist.writeto(buffer)
            with gzip.open(output.temporary, "wb") as f:
                f.write(buffer.getbuffer())
        else:
            hdulist.writeto(output.temporary)
        output.commit()

"""fastformer's exception hierarchy: one root, a ValueError for bad files, one for unsupported content."""


class FastformerError(Exception):
    """Root of every exception fastformer raises on purpose."""


class FormatError(FastformerError, ValueError):
    """A file is malformed; the message names the file, the field and what was expected."""


class UnsupportedError(FastformerError, ValueError):
    """Valid content that fastformer does not support (an architecture, a quant type); lists what is."""


class IsaError(FastformerError, ValueError):
    """FASTFORMER_ISA names an unknown ISA path or one this CPU cannot run."""

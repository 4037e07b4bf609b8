"""The one exception type users see: a single line that names the file or field at fault."""


class PipelineInputError(ValueError):
    """Bad input: raised with a one-line message naming the offending file, column or param."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))

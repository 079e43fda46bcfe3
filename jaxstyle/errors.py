"""The exceptions jaxstyle raises for bad input: one base class, one subclass per area.

Every message is written for a person (it names the file, URL, id or setting and says what
is allowed), so the CLI and the app can show ``str(error)`` as it is.
"""


class JaxstyleError(Exception):
    """Base class of every error that a user can cause and should read."""


class SettingsError(JaxstyleError, ValueError):
    """A setting is out of its allowed range or of the wrong kind."""


class ImageError(JaxstyleError, ValueError):
    """A file or byte string is not an image we can use."""


class FetchError(JaxstyleError):
    """A URL was refused or could not be downloaded."""


class WeightsError(JaxstyleError):
    """A VGG19 weight file is missing, corrupt or of the wrong layout."""


class CatalogError(JaxstyleError):
    """A catalog style id is unknown or its image cannot be had."""


class GalleryError(JaxstyleError):
    """The gallery database cannot be opened, read or written."""


class RunNotFound(GalleryError, LookupError):
    """No run (or input image) with that id is in the gallery."""


class Cancelled(JaxstyleError):
    """A run was cancelled by its progress callback."""


class VideoError(JaxstyleError, ValueError):
    """A file that is not a video we can paint, or one beyond the limits."""


class ClusterError(JaxstyleError):
    """The Ray cluster can't be reached, refused this process, or lost the worker of a run."""


class QueueFullError(JaxstyleError):
    """The job runner already holds as many waiting runs as it accepts."""


class ModelError(JaxstyleError):
    """A model that is missing, damaged, misnamed, or asked for a style it does not hold."""


class LimitError(JaxstyleError):
    """A user's share of a shared site is used up (runs at once, size, storage, …); the message
    names the limit and how to get more."""

"""Model classes: fitted state, prediction, save and load."""

from ._base import BaseModel, load
from ._baseline import BaselineModel

__all__ = ["BaseModel", "BaselineModel", "load"]

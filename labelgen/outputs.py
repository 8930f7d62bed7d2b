"""What every label generator returns: uni-labels over all clips, their uncertainty, provenance.

Shared by labelgen.methods (which make outputs) and labelgen.trust (which combines them), so
neither has to import the other's package to name the type.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Labels = dict[str, np.ndarray]


@dataclass
class MethodOutput:
    labels: Labels  # modality -> (N_all,)
    uncertainty: dict[str, np.ndarray] = field(default_factory=dict)  # "{m}_std" ... -> (N_all,)
    provenance: dict[str, Any] = field(default_factory=dict)

"""A fitted scikit-learn pipeline rewritten as plain numpy (and plain Python for one row).

scikit-learn's ColumnTransformer costs ~3 ms per call however few the rows (pandas column
selection, input checks, feature-name validation) where the arithmetic needs microseconds; for a
single-row request that was 90% of the server's work. `compile_pipeline` rewrites the fitted steps
it knows (ColumnTransformer, nested Pipelines, kfops' as_float/as_text, SimpleImputer,
StandardScaler, MinMaxScaler, OneHotEncoder, OrdinalEncoder; linear models as a dot product,
HistGradientBoosting trees as flat node arrays (`trees`), random forests and extra-trees by one
numba-compiled walk (`forests`), any other estimator called on the matrix) into functions over
the request's validated columns. A pipeline with any other step is not compiled, and sklearn
serves it as before.

Compiling reads fitted attributes, so it could drift from sklearn's own code across versions:
`verify` compares the compiled form with the pipeline on probe rows (every category, nulls,
unseen values, extremes), batch and row by row, and the server uses it only if every answer
agrees, including which inputs sklearn refuses. At request time any exception in the compiled
form sends the request to sklearn, so the worst case is the old speed, never a different answer.
"""

from kfops.serving.fastpath.compiler import CompiledPipeline, compile_pipeline
from kfops.serving.fastpath.steps import Unsupported
from kfops.serving.fastpath.verify import probes, verify

__all__ = ["CompiledPipeline", "Unsupported", "compile_pipeline", "probes", "verify"]

"""fasterai.sparse: exact removal of dead channels.

The public API, in one place (the modules hold the rest, for those who extend fasterai):

    from fasterai.sparse import Pruner, Sparsifier, save_pruned, load_pruned

- `Pruner`: `prune_model(model, example_inputs)` removes dead channels exactly; `dry_run` says what it would do.
- `analyse`, `Analysis`, `decide`, `Plan`, `PruneReport`, `Reason`: the stages, for inspection and reuse.
- `Sparsifier`: zero whole channels, group by group, so that the Pruner can remove them.
- `save_pruned`, `load_pruned`: a pruned model's weights and widths, in torch's weights-only format.
- `fold_batchnorm`, `export_model`: deployment.
- `OpHandler`, `register_handler`, `unregister_handler`: teach fasterai a kind of layer or op.

This file is written by hand (nbdev generates the modules beside it, not this one).
"""
from .handlers import OpHandler, register_handler, unregister_handler
from .graph import Reason
from .analysis import Analysis, analyse
from .plan import Plan, decide
from .report import PruneReport
from .pruner import Pruner
from .sparsifier import Sparsifier
from .checkpoint import save_pruned, load_pruned
from .deploy import fold_batchnorm, export_model

__all__ = ['Pruner', 'Sparsifier', 'save_pruned', 'load_pruned', 'fold_batchnorm', 'export_model',
           'analyse', 'Analysis', 'decide', 'Plan', 'PruneReport', 'Reason',
           'OpHandler', 'register_handler', 'unregister_handler']

"""The paper's models (logistic regression, ReLU MLPs) on one flat parameter vector."""
from .mlp import (mlp_sizes, num_params, init_mlp, mlp_loss, mlp_value, mlp_logits, accuracy,
                  mlp_value_and_grad)

__all__ = ["mlp_sizes", "num_params", "init_mlp", "mlp_loss", "mlp_value", "mlp_logits",
           "accuracy", "mlp_value_and_grad"]
from .local import (init_local_mlp, head_params, mlp_example_losses, mlp_local_losses,
                    mlp_local_value_and_grad, mlp_local_objective)

__all__ += ["init_local_mlp", "head_params", "mlp_example_losses", "mlp_local_losses",
            "mlp_local_value_and_grad", "mlp_local_objective"]

"""The names the options choose among, without importing what they name (so that the command line
builds its options without importing numpy). Each tuple lists the keys of a registry in the
module that implements them, in the same order; tests/test_schema.py checks they agree.

    MODELS     models.MODELS              the classifiers
    LOSSES     losses.LOSSES              the training losses
    SCHEDULES  optim.SCHEDULES            learning-rate schedules
    DATASETS   datasets.DATASETS + custom data sets train and eval can read
"""

MODELS = ("linear", "mlp")
LOSSES = ("cross-entropy", "hinge")
SCHEDULES = ("constant", "cosine", "step")
DATASETS = ("mnist", "fashion-mnist", "custom")

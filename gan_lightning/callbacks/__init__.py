"""Lightning callbacks for everything around the training step, one job each.

Holds the sample grid (``samples``), the generative metrics and collapse warning (``metrics``),
the end-of-training pictures (``training_pictures``), the run summary, TensorBoard layouts,
timed snapshots, the interrupt checkpoint, the random states a resume replays, Optuna pruning
reports and per-rank random streams under DDP (``distributed``). ``build.build_callbacks``
instantiates them from ``conf/callbacks``; nothing in the GAN module knows they exist.
"""

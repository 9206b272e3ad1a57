"""Generators, discriminators and the guiding classifier, one architecture per module.

Every discriminator returns raw logits of shape ``[B]`` and none contains a ``Sigmoid``: the
losses apply the sigmoid themselves (``BCEWithLogits``), which is numerically stable and makes
squashing twice impossible, since exactly one side of the interface owns the nonlinearity.
"""

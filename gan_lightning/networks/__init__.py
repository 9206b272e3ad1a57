"""Generators, discriminators and the digit classifier's CNN, one architecture per module.

Built from ``conf/model/*.yaml`` (``_target_``) and rebuilt from checkpoints, which may name only
classes of this package (or of modules a user lists in ``trusted_networks``). Every
discriminator returns raw logits of shape ``[B]`` and none contains a ``Sigmoid``: the losses
apply the sigmoid themselves (``BCEWithLogits``), which is numerically stable and makes
squashing twice impossible, since exactly one side of the interface owns the nonlinearity.
"""

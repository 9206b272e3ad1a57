"""Our Hydra plugin: Hydra only instantiates sweepers that live in the ``hydra_plugins``
namespace package (:class:`ResumableOptunaSweeper`, in this package's ``sweeper`` module)."""

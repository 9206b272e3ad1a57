"""Lightning callbacks for everything around the training step: pictures, metrics, events."""

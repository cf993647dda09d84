"""Recovery: the sensor that reloads bronze hours with holes."""

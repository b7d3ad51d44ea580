"""Representation similarity, layer/filter/weight/convergence studies, and report building."""

"""STIA-Kit: spatio-temporal interaction attention kit."""
__version__ = "0.1.0"

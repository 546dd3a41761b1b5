"""The policy types the config parses into: what a pod is given, decided from its names.

They sit below `plugin.config` (which builds them) and above the leaf modules, so
the core and the front-ends use them without importing the config's parsing.
"""

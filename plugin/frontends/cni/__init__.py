"""The CNI front-end: the same core as the exec plugin, spoken to as a CNI runtime speaks.

Selected when `CNI_COMMAND` is set (`plugin.frontends.cni.main.main`); ADD, DEL, CHECK,
VERSION, STATUS and GC of spec versions 0.3.1 to 1.1.0.
"""

"""Fabric tasks that deploy yurt onto the hosts of an inventory."""
